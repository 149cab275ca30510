//! `curfew explain ENV`: why an environment is in its state, every target's actual and
//! desired capacity, what keeps it from converging, and the next transitions.
//!
//! With `-c FILE` it works standalone, from the configuration, the overrides the service
//! stored (its state directory or the `Override` resources) and a read-only discovery;
//! otherwise it asks a running service (`--server`) through `GET /api/v1/environments` (its
//! clock), `GET /api/v1/environments/{name}` (the targets as its latest pass saw them) and
//! `GET /api/v1/environments/{name}/plan`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::EXIT_BAD_INPUT;
use super::client::ServerArgs;
use crate::calendar::format::{for_people, utc_seconds};
use crate::config::{Config, StateConfig};
use crate::domain::{Action, Override, Target};
use crate::reconciler::Settings;
use crate::{planner, service};

/// How far ahead the next transitions are looked for.
const LOOKAHEAD: Duration = Duration::days(7);

/// Transitions shown at most.
const TRANSITIONS_SHOWN: usize = 4;

/// Where standalone `explain` looks.
#[derive(Debug)]
pub struct Standalone<'a> {
    /// The configuration file.
    pub config: &'a Path,
    /// The state directory holding the overrides (default: the configuration's).
    pub state_dir: Option<&'a Path>,
    /// The instant explained.
    pub at: DateTime<Utc>,
}

/// `curfew explain ENV -c FILE [--at T] [--state-dir DIR]`: from the configuration, the
/// stored overrides and a read-only discovery.
pub fn standalone(from: Standalone<'_>, environment: &str, as_json: bool) -> u8 {
    let Standalone {
        config: path,
        state_dir,
        at,
    } = from;
    let config = match super::load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(env) = config.environments.get(environment) else {
        let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
        eprintln!(
            "error: no environment '{environment}' in {}; it has {}",
            path.display(),
            known.join(", ")
        );
        return EXIT_BAD_INPUT;
    };
    let schedule = config.schedule_of(env);
    let zone = schedule.zone();
    let (stored, unreadable) = match stored_overrides(&config, state_dir) {
        Ok(stored) => (stored, None),
        Err(err) => (Vec::new(), Some(err)),
    };
    let plan = planner::with_overrides(
        config.plan_environment(env, at, at + LOOKAHEAD),
        &stored,
        at,
        at + LOOKAHEAD,
        zone,
    );
    let discovery = match super::check::discover(&config, at) {
        Ok(discovery) => discovery,
        Err(code) => return code,
    };
    let decision = planner::decide_environment(schedule, environment, &stored, at);
    let decisions = HashMap::from([(environment.to_string(), decision.clone())]);
    let (targets, undiscovered, failure) = match discovery {
        Ok(discovery) => {
            let mine: Vec<Target> = discovery
                .targets
                .into_iter()
                .filter(|t| t.environment == environment)
                .collect();
            let unseen: Vec<String> = discovery
                .undiscovered
                .iter()
                .filter(|u| u.environment == environment)
                .map(|u| format!("{}: not discovered: {}", u.selection, u.error.with_hint()))
                .collect();
            (mine, unseen, None)
        }
        Err(err) => (Vec::new(), Vec::new(), Some(err)),
    };
    let settings = Settings::from_config(&config.reconciler).plan;
    let actions = planner::plan_actions(at, &decisions, &targets, settings);
    let desired: HashMap<&str, &Action> = actions
        .actions
        .iter()
        .map(|p| (p.action.target(), &p.action))
        .collect();
    let rows: Vec<Value> = targets
        .iter()
        .map(|target| {
            let (wanted, note) = match desired.get(target.id.as_str()) {
                Some(Action::ScaleDown { to, .. }) => (*to, "would scale down".to_string()),
                Some(Action::ScaleUp { to, .. }) => (*to, "would scale up".to_string()),
                None => match actions.skipped.iter().find(|s| s.target == target.id) {
                    Some(skipped) => (target.capacity, format!("left alone: {}", skipped.reason)),
                    None => (target.capacity, "converged".to_string()),
                },
            };
            json!({
                "target": target.id,
                "actual": target.capacity.to_string(),
                "desired": wanted.to_string(),
                "note": note,
            })
        })
        .collect();
    let mut blocked: Vec<String> = actions
        .skipped
        .iter()
        .filter(|s| s.environment == environment)
        .map(|s| format!("{}: {}", s.target, s.reason))
        .collect();
    blocked.extend(undiscovered);
    if let Some(err) = &failure {
        blocked.push(format!("discovery failed: {err}"));
    }
    if let Some(err) = &unreadable {
        blocked.push(format!("overrides not read: {err}"));
    }
    let overrides: Vec<String> = stored
        .iter()
        .filter(|o| o.environment == environment && o.is_active(at))
        .map(|o| {
            format!(
                "{} until {} by {}: {}",
                o.state,
                for_people(o.until, zone),
                crate::text::escape(&o.created_by),
                crate::text::escape(&o.reason)
            )
        })
        .collect();
    let transitions: Vec<Value> = plan
        .transitions
        .iter()
        .take(TRANSITIONS_SHOWN)
        .map(|t| {
            json!({
                "at": utc_seconds(t.at),
                "local": for_people(t.at, zone),
                "direction": t.direction.to_string(),
                "rule": t.rule,
            })
        })
        .collect();
    let document = json!({
        "environment": environment,
        "at": utc_seconds(at),
        "state": decision.state.to_string(),
        "reason": decision.reason,
        "schedule": env.schedule,
        "timezone": zone.name(),
        "overrides": overrides,
        "targets": rows,
        "blocked": blocked,
        "next_transitions": transitions,
    });
    if as_json {
        println!("{document}");
    } else {
        print!("{}", render(&document, &for_people(at, zone)));
    }
    u8::from(failure.is_some() || unreadable.is_some())
}

/// The overrides the service stored, read without changing anything: the file in the state
/// directory (`state_dir`, else the configuration's), or the `Override` resources.
fn stored_overrides(config: &Config, state_dir: Option<&Path>) -> Result<Vec<Override>, String> {
    let state_dir = match (state_dir, &config.state) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, StateConfig::Dir(dir)) => dir.clone(),
        (None, StateConfig::Kubernetes(_)) => PathBuf::new(),
    };
    let runtime = super::service::runtime()
        .map_err(|_| "no runtime to read the overrides with".to_string())?;
    runtime
        .block_on(service::stored_overrides(config, &state_dir))
        .map_err(|err| err.to_string())
}

/// `curfew explain ENV` against a running service.
pub fn from_server(server: ServerArgs, environment: &str) -> u8 {
    super::client::explain(server, environment, |service, plan| {
        let view = &service.environment;
        let mut blocked: Vec<String> = view["implicit_overrides"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|t| format!("{t}: scaled up by hand during downtime (an implicit override)"))
            .collect();
        for unusable in view["unusable_targets"].as_array().into_iter().flatten() {
            blocked.push(format!(
                "{}: cannot be scaled: {}",
                text(&unusable["target"]),
                text(&unusable["reason"])
            ));
        }
        let targets: Vec<Value> = view["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let note = [&t["error"], &t["left_alone"]]
                    .into_iter()
                    .find_map(Value::as_str)
                    .map_or_else(
                        || {
                            if t["desired"] == t["actual"] {
                                "converged".to_string()
                            } else {
                                format!("{} wanted", text(&t["desired"]))
                            }
                        },
                        str::to_string,
                    );
                json!({
                    "target": t["target"],
                    "actual": format!("{} ({})", text(&t["actual"]), text(&t["capacity"])),
                    "desired": t["desired"],
                    "note": note,
                })
            })
            .collect();
        for failing in view["targets"].as_array().into_iter().flatten() {
            if let Some(error) = failing["error"].as_str() {
                blocked.push(format!("{}: failing: {error}", text(&failing["target"])));
            }
        }
        for unseen in view["degraded"]["unseen"].as_array().into_iter().flatten() {
            blocked.push(format!(
                "{}: not discovered: {}",
                text(&unseen["selection"]),
                text(&unseen["error"])
            ));
        }
        let overrides: Vec<String> = view["overrides"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{} until {} by {}: {}",
                    text(&o["state"]),
                    text(&o["until"]),
                    text(&o["created_by"]),
                    text(&o["reason"])
                )
            })
            .collect();
        let zone = view["timezone"]
            .as_str()
            .and_then(|name| crate::calendar::Zone::named(name).ok())
            .unwrap_or(crate::calendar::Zone::UTC);
        let transitions: Vec<Value> = plan["transitions"]
            .as_array()
            .into_iter()
            .flatten()
            .take(TRANSITIONS_SHOWN)
            .map(|t| {
                let mut t = t.clone();
                if let Some(at) = t["at"]
                    .as_str()
                    .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                {
                    t["local"] = json!(for_people(at.with_timezone(&Utc), zone));
                }
                t
            })
            .collect();
        Ok(json!({
            "environment": environment,
            "at": service.at,
            "state": view["state"],
            "reason": view["reason"],
            "schedule": plan["schedule"],
            "timezone": view["timezone"],
            "overrides": overrides,
            "targets": targets,
            "blocked": blocked,
            "next_transitions": transitions,
        }))
    })
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => crate::text::escape(s).into_owned(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The explanation as lines for people.
pub fn render(document: &Value, at_local: &str) -> String {
    let mut out = format!(
        "{} at {at_local}: {}\n  why       {} (schedule {}, {})\n",
        text(&document["environment"]),
        text(&document["state"]),
        text(&document["reason"]),
        text(&document["schedule"]),
        text(&document["timezone"]),
    );
    match &document["overrides"] {
        Value::Array(list) if list.is_empty() => out += "  overrides none\n",
        Value::Array(list) => {
            for (i, o) in list.iter().enumerate() {
                let label = if i == 0 { "overrides" } else { "" };
                out += &format!("  {label:<9} {}\n", text(o));
            }
        }
        other => out += &format!("  overrides {}\n", text(other)),
    }
    let rows = document["targets"].as_array().cloned().unwrap_or_default();
    if !rows.is_empty() {
        let width = rows
            .iter()
            .map(|r| text(&r["target"]).len())
            .max()
            .unwrap_or(0);
        let actual_width = rows
            .iter()
            .map(|r| text(&r["actual"]).len())
            .max()
            .unwrap_or(0)
            .max(6);
        out += "  targets\n";
        for row in &rows {
            out += &format!(
                "    {:<width$}  {:<actual_width$} -> {}  ({})\n",
                text(&row["target"]),
                text(&row["actual"]),
                text(&row["desired"]),
                text(&row["note"])
            );
        }
    }
    let blocked = document["blocked"].as_array().cloned().unwrap_or_default();
    if blocked.is_empty() {
        out += "  blocked   nothing\n";
    }
    for (i, line) in blocked.iter().enumerate() {
        let label = if i == 0 { "blocked" } else { "" };
        out += &format!("  {label:<9} {}\n", text(line));
    }
    let transitions = document["next_transitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if transitions.is_empty() {
        out += "  next      no change within seven days\n";
    }
    for (i, t) in transitions.iter().enumerate() {
        let label = if i == 0 { "next" } else { "" };
        out += &format!(
            "  {label:<9} {}  {}  {}\n",
            text(&t["local"]),
            text(&t["direction"]),
            text(&t["rule"])
        );
    }
    out
}
