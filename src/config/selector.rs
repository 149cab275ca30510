//! Kubernetes label selectors in their string form (`app=web,tier!=cache,env in (a,b),!legacy`)
//! and namespace globs (`team-*`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Why a selector string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad label selector '{selector}': {reason}")]
pub struct Error {
    /// The selector as written.
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// Labels a selector can be matched against: a value by key.
pub trait Labels {
    /// The value of label `key`, if the object has it.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A parsed label selector: every requirement must hold. The empty selector selects all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

// === impl LabelSelector ===

impl LabelSelector {
    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl FromStr for LabelSelector {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error {
            selector: text.to_string(),
            reason,
        };
        let requirements = split_top_level(text)
            .map_err(fail)?
            .into_iter()
            .filter(|part| !part.trim().is_empty())
            .map(|part| parse_requirement(part.trim()).map_err(fail))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(LabelSelector { requirements })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

// === impl Requirement ===

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &dyn Labels) -> bool {
        let among = |values: &[String], value: &str| values.iter().any(|v| v == value);
        match self {
            Requirement::Equals(key, value) => labels.label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => labels.label(key) != Some(value.as_str()),
            Requirement::In(key, values) => labels.label(key).is_some_and(|v| among(values, v)),
            Requirement::NotIn(key, values) => !labels.label(key).is_some_and(|v| among(values, v)),
            Requirement::Exists(key) => labels.label(key).is_some(),
            Requirement::DoesNotExist(key) => labels.label(key).is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => f.write_str(k),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced ')'".to_string())?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".to_string());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(valid_key(key.trim())?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(
            valid_key(key.trim())?,
            valid_value(value.trim())?,
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(
            valid_key(key.trim())?,
            valid_value(value.trim())?,
        ));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(valid_key(key)?));
    };
    let (negated, list) = if let Some(list) = rest.strip_prefix("notin") {
        (true, list)
    } else if let Some(list) = rest.strip_prefix("in") {
        (false, list)
    } else {
        return Err(format!("expected 'in' or 'notin' after '{key}'"));
    };
    let inner = list
        .trim()
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised list after '{key}'"))?;
    let values = inner
        .split(',')
        .map(|v| valid_value(v.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let key = valid_key(key)?;
    Ok(if negated {
        Requirement::NotIn(key, values)
    } else {
        Requirement::In(key, values)
    })
}

fn valid_key(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!("'{key}' is not a label key"))
    }
}

fn valid_value(value: &str) -> Result<String, String> {
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!("'{value}' is not a label value"))
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters and `?` one.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == name;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Iterative matching with backtracking to the last star.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Labels from `(key, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn mk_labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        let parsed: LabelSelector = selector.parse().expect("valid selector");
        parsed.matches(&mk_labels(pairs))
    }

    #[test]
    fn every_operator_matches_as_kubernetes_defines_it() {
        assert!(selects("app=web", &[("app", "web")]));
        assert!(selects("app==web", &[("app", "web")]));
        assert!(!selects("app=web", &[("app", "api")]));
        assert!(selects("app!=web", &[]));
        assert!(!selects("app!=web", &[("app", "web")]));
        assert!(selects("env in (a, b)", &[("env", "b")]));
        assert!(!selects("env in (a,b)", &[]));
        assert!(selects("env notin (a,b)", &[]));
        assert!(!selects("env notin (a,b)", &[("env", "a")]));
        assert!(selects("legacy", &[("legacy", "")]));
        assert!(!selects("!legacy", &[("legacy", "x")]));
        assert!(selects("", &[]));
    }

    #[test]
    fn all_requirements_must_hold() {
        let selector = "app=web,env in (staging,dev),!legacy";
        assert!(selects(selector, &[("app", "web"), ("env", "dev")]));
        assert!(!selects(
            selector,
            &[("app", "web"), ("env", "dev"), ("legacy", "1")]
        ));
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_reason() {
        for bad in ["env in (a", "app=we b", "env within (a)", "=x"] {
            let error = bad.parse::<LabelSelector>().expect_err(bad);
            assert_eq!(error.selector, bad);
        }
    }

    #[test]
    fn display_round_trips() {
        let text = "app=web,env notin (a,b),!legacy,tier";
        let parsed: LabelSelector = text.parse().expect("valid");
        assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob_matches("team-*", "team-a"));
        assert!(glob_matches("*-shop-*", "eu-shop-1"));
        assert!(glob_matches("shop?", "shop1"));
        assert!(!glob_matches("team-*", "teams"));
        assert!(glob_matches("shop", "shop"));
        assert!(!glob_matches("shop", "shop2"));
    }
}
