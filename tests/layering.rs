//! The layers of ARCHITECTURE.md hold: no module of `src/` names a module of a layer above
//! its own, in a `use` line or in a `crate::`, `super::` or `self::` path anywhere in its code
//! (its unit tests included; comments are not code).
//!
//! Every module must have a place in [`LAYERS`]; a new module fails this test until it gets
//! one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers from the bottom, and the modules in each. A module path names itself and what
/// is below it (`cost` covers `cost::model`), unless a longer path has a place of its own.
const LAYERS: &[(&str, &[&str])] = &[
    ("core", &["domain", "calendar", "text"]),
    ("decisions", &["planner", "cost"]),
    (
        "support",
        // `allocator` belongs to the binary (`main.rs`), not the library.
        &["clock", "telemetry", "http_client", "zoneinfo", "allocator"],
    ),
    ("configuration", &["config"]),
    (
        "adapters",
        &[
            "activity",
            "providers",
            "overrides",
            "state",
            "audit",
            "notify",
            "leadership",
            "cost::tracker",
            "cost::forecast",
        ],
    ),
    ("reconciler", &["reconciler"]),
    ("service", &["service"]),
    ("edge", &["api", "cli"]),
];

/// A module's layer: its index in [`LAYERS`] and the layer's name, by the longest module path
/// that has a place.
fn layer_of(module: &[String]) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, usize, &'static str)> = None;
    for (index, (name, modules)) in LAYERS.iter().enumerate() {
        for placed in *modules {
            let placed: Vec<&str> = placed.split("::").collect();
            let matches = placed.len() <= module.len()
                && placed.iter().zip(module).all(|(a, b)| *a == b.as_str());
            if matches && best.is_none_or(|(length, _, _)| placed.len() > length) {
                best = Some((placed.len(), index, name));
            }
        }
    }
    best.map(|(_, index, name)| (index, name))
}

/// The module a file of `src/` defines: `src/cost/model.rs` is `cost::model`,
/// `src/service/mod.rs` is `service`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads a path (with `{...}` groups) starting at `text`; returns every full path it names.
fn paths_at(text: &str) -> Vec<Vec<String>> {
    let mut rest = text;
    let mut prefix = Vec::new();
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        prefix.push(rest[..end].to_string());
        rest = &rest[end..];
        let Some(after) = rest.strip_prefix("::") else {
            break;
        };
        rest = after.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut close = group.len();
            for (index, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    close = index;
                    break;
                }
            }
            let mut found = Vec::new();
            for item in split_top_level(&group[..close]) {
                let item = item.trim();
                if item == "self" || item.starts_with("self ") {
                    found.push(prefix.clone());
                } else if !item.is_empty() && item != "*" {
                    for path in paths_at(item) {
                        found.push(prefix.iter().cloned().chain(path).collect());
                    }
                }
            }
            return found;
        }
    }
    vec![prefix]
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

/// One module naming another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reference {
    line: usize,
    target: Vec<String>,
}

/// Every module path the code of `file` (module `module`) names through `crate::`, `super::`
/// or `self::`, resolved against the crate root. Inline modules (`mod tests {`) are taken to
/// last to the end of the file, as they do in this crate.
fn references(module: &[String], file: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut inline = 0;
    for (number, line) in file.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        let declaration = code
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        if declaration.starts_with("mod ") && declaration.trim_end().ends_with('{') {
            inline += 1;
        }
        for (index, _) in code.match_indices("::") {
            let start = code[..index]
                .rfind(|c: char| !is_ident(c))
                .map_or(0, |i| i + 1);
            if start > 0 && code[..start].ends_with("::") {
                continue;
            }
            let root = &code[start..index];
            if !matches!(root, "crate" | "super" | "self") {
                continue;
            }
            for path in paths_at(&code[start..]) {
                if let Some(target) = resolve(module, inline, &path) {
                    found.push(Reference {
                        line: number + 1,
                        target,
                    });
                }
            }
        }
    }
    found
}

/// The crate-root path `path` names from `module`, inside `inline` inline modules.
fn resolve(module: &[String], inline: usize, path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some(module.iter().cloned().chain(rest.iter().cloned()).collect()),
        "super" => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            let beyond_inline = supers.saturating_sub(inline);
            let base = module.len().checked_sub(beyond_inline)?;
            Some(
                module[..base]
                    .iter()
                    .cloned()
                    .chain(path[supers..].iter().cloned())
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Every upward reference in `file`, as messages.
fn upward(relative: &Path, file: &str) -> Vec<String> {
    let module = module_of(relative);
    let Some((own, own_name)) = layer_of(&module) else {
        return vec![format!(
            "src/{}: module `{}` has no layer in tests/layering.rs",
            relative.display(),
            module.join("::")
        )];
    };
    let mut problems = BTreeSet::new();
    for reference in references(&module, file) {
        if let Some((layer, name)) = layer_of(&reference.target)
            && layer > own
        {
            problems.insert(format!(
                "src/{}:{}: `{}` ({own_name}) names `{}` ({name}), a layer above it",
                relative.display(),
                reference.line,
                module.join("::"),
                reference.target.join("::")
            ));
        }
    }
    problems.into_iter().collect()
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

#[test]
fn no_module_names_a_module_of_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in files {
        let relative = path.strip_prefix(&src).expect("below src").to_path_buf();
        if relative == Path::new("lib.rs") || relative == Path::new("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        problems.extend(upward(&relative, &text));
        checked += 1;
    }
    assert!(checked > 50, "only {checked} modules found");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn an_upward_import_in_any_form_is_found() {
    let cases = [
        ("planner.rs", "use crate::config::Config;\n"),
        ("planner.rs", "use crate::{calendar::State, reconciler};\n"),
        (
            "domain/target.rs",
            "let x = crate::providers::sim::Estate::new();\n",
        ),
        (
            "cost/model.rs",
            "use crate::cost::{Catalog, tracker::CostTracker};\n",
        ),
        ("cost/mod.rs", "pub use self::tracker::CostTracker;\n"),
        (
            "providers/kube/provider.rs",
            "use super::super::super::service::Options;\n",
        ),
        (
            "reconciler.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::api;\n}\n",
        ),
    ];
    for (file, text) in cases {
        let problems = upward(Path::new(file), text);
        assert_eq!(problems.len(), 1, "{file}: {text} gave {problems:?}");
    }
}

#[test]
fn downward_and_sideways_imports_pass_and_comments_do_not_count() {
    let cases = [
        (
            "reconciler.rs",
            "use crate::planner::{self, PlanSettings};\n",
        ),
        (
            "cost/tracker.rs",
            "use crate::state::versioned::{self, Current};\n",
        ),
        ("cost/model.rs", "use super::catalog::Catalog;\n"),
        (
            "audit.rs",
            "#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
        (
            "planner.rs",
            "//! Unlike [`crate::reconciler`], this is pure.\n",
        ),
        ("domain/mod.rs", "pub use self::target::Target;\n"),
    ];
    for (file, text) in cases {
        assert!(upward(Path::new(file), text).is_empty(), "{file}: {text}");
    }
    assert!(
        !upward(Path::new("nowhere.rs"), "").is_empty(),
        "an unplaced module"
    );
}
