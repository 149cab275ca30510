//! Lints over a configuration whose values are valid: what curfew would act on wrongly
//! (errors) and what is harmless to run but most likely a mistake (warnings).
//!
//! Errors:
//! * the same Kubernetes namespace (with the same workload selector) or AWS object selected by
//!   two environments: their schedules would fight over it, each pass undoing the other's
//!   write and the original capacity written by one sleep read back by the other.
//!
//! Warnings:
//! * an environment without targets: it decides and takes overrides, but scales nothing;
//! * a schedule no environment uses, a calendar no schedule uses;
//! * `overrides.max_duration` above 90 days: an override that long switches the schedule off.

use std::collections::BTreeMap;

use serde_saphyr::{Location, Spanned};

use super::Diagnostic;
use super::duration;
use super::raw::RawConfig;
use super::targets::RawTargetConfig;

/// Longest `overrides.max_duration` that is not reported.
const MAX_OVERRIDE_DAYS: i64 = 90;

/// A lint's finding: an error fails the configuration, a warning is only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration would make curfew act wrongly.
    Error,
    /// Harmless to run, most likely a mistake.
    Warning,
}

/// One finding of the lints: what `check` prints after `file:line:col:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Where, what and how to fix it.
    pub diagnostic: Diagnostic,
}

/// A configuration warning, printed as `file:line:col: warning: ...` with its hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub Diagnostic);

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.render(f, "warning")
    }
}

/// Every finding of the lints over `raw`, in file order.
pub fn lint(raw: &RawConfig, file: &std::path::Path) -> Vec<Finding> {
    let mut lints = Lints {
        file,
        findings: Vec::new(),
    };
    lints.shared_selections(raw);
    lints.empty_environments(raw);
    lints.unused(raw);
    lints.long_overrides(raw);
    let mut findings = lints.findings;
    findings.sort_by_key(|f| (f.diagnostic.line, f.diagnostic.column));
    findings
}

struct Lints<'a> {
    file: &'a std::path::Path,
    findings: Vec<Finding>,
}

// === impl Lints ===

impl Lints<'_> {
    fn push(&mut self, severity: Severity, at: Location, message: String, hint: String) {
        self.findings.push(Finding {
            severity,
            diagnostic: Diagnostic {
                file: self.file.to_path_buf(),
                line: at.line(),
                column: at.column(),
                message,
                hint: Some(hint),
            },
        });
    }

    /// Objects selected by more than one environment.
    fn shared_selections(&mut self, raw: &RawConfig) {
        // Each object's first environment, as (environment, where).
        let mut first: BTreeMap<String, (String, Location)> = BTreeMap::new();
        for (environment, env) in &raw.environments {
            for target in &env.value.targets {
                for object in selected_objects(target) {
                    match first.get(&object) {
                        Some((owner, at)) if owner != environment => {
                            let (owner, line) = (owner.clone(), at.line());
                            self.push(
                                Severity::Error,
                                target.referenced,
                                format!(
                                    "{object} is selected by environment '{owner}' (line {line}) and by '{environment}'"
                                ),
                                "give each namespace or AWS object to one environment: two schedules would undo each other's writes (narrow one with `selector`, `exclude_namespaces` or other names)".to_string(),
                            );
                        }
                        Some(_) => {}
                        None => {
                            first.insert(object, (environment.clone(), target.referenced));
                        }
                    }
                }
            }
        }
    }

    fn empty_environments(&mut self, raw: &RawConfig) {
        for (name, env) in &raw.environments {
            if env.value.targets.is_empty() {
                self.push(
                    Severity::Warning,
                    env.referenced,
                    format!("environment '{name}' has no targets: it scales nothing"),
                    "add a `targets:` list (kubernetes, aws_asg, aws_eks_nodegroup, aws_ec2, aws_rds), or remove the environment".to_string(),
                );
            }
        }
    }

    /// Schedules no environment uses, calendars no schedule uses.
    fn unused(&mut self, raw: &RawConfig) {
        for (name, schedule) in &raw.schedules {
            let used = raw
                .environments
                .values()
                .any(|env| env.value.schedule.value == *name);
            if !used {
                self.push(
                    Severity::Warning,
                    schedule.referenced,
                    format!("schedule '{name}' is not used by any environment"),
                    "name it in an environment's `schedule:`, or remove it".to_string(),
                );
            }
        }
        for (name, calendar) in &raw.calendars {
            let used = raw
                .schedules
                .values()
                .any(|schedule| schedule.value.holidays.iter().any(|h| h.value == *name));
            if !used {
                self.push(
                    Severity::Warning,
                    calendar.referenced,
                    format!("calendar '{name}' is not used by any schedule"),
                    "list it in a schedule's `holidays:`, or remove it".to_string(),
                );
            }
        }
    }

    fn long_overrides(&mut self, raw: &RawConfig) {
        for (name, env) in &raw.environments {
            let Some(max) = env
                .value
                .overrides
                .as_ref()
                .and_then(|policy| policy.max_duration.as_ref())
            else {
                continue;
            };
            let Ok(parsed) = duration::parse(&max.value) else {
                // Validation reports it.
                continue;
            };
            if parsed > chrono::Duration::days(MAX_OVERRIDE_DAYS) {
                self.push(
                    Severity::Warning,
                    max.referenced,
                    format!(
                        "environment '{name}': overrides may last {} ({} days), longer than {MAX_OVERRIDE_DAYS} days",
                        max.value,
                        parsed.num_days()
                    ),
                    "an override that long switches the schedule off; for a long pause, add an exception to the schedule instead (`exceptions: [{from, to, state}]`)".to_string(),
                );
            }
        }
    }
}

/// The objects a target names literally, as `kind identity` strings: namespaces (with the
/// workload selector), AWS objects by region, account role and name, or by their tag
/// selection. Patterns are compared as written.
fn selected_objects(target: &Spanned<RawTargetConfig>) -> Vec<String> {
    let in_account = |region: &str, role: &Option<String>| match role {
        Some(role) => format!("in {region} (role {role})"),
        None => format!("in {region}"),
    };
    let tags = |tags: &BTreeMap<String, String>| {
        let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("tagged {{{}}}", pairs.join(","))
    };
    match &target.value {
        RawTargetConfig::Kubernetes(k) => {
            let selector = match &k.selector {
                Some(selector) => format!(" (workloads matching {selector})"),
                None => String::new(),
            };
            k.namespaces
                .iter()
                .map(|namespace| format!("kubernetes namespace '{namespace}'{selector}"))
                .collect()
        }
        RawTargetConfig::AwsAsg(a) => {
            let place = in_account(&a.region, &a.assume_role_arn);
            let mut objects: Vec<String> = a
                .names
                .iter()
                .map(|name| format!("aws_asg '{name}' {place}"))
                .collect();
            if a.names.is_empty() && !a.tags.is_empty() {
                objects.push(format!("aws_asg {} {place}", tags(&a.tags)));
            }
            objects
        }
        RawTargetConfig::AwsEksNodegroup(n) => {
            let place = in_account(&n.region, &n.assume_role_arn);
            let mut objects: Vec<String> = n
                .names
                .iter()
                .map(|name| format!("aws_eks_nodegroup '{}/{name}' {place}", n.cluster))
                .collect();
            if n.names.is_empty() {
                objects.push(format!(
                    "aws_eks_nodegroup '{}' {} {place}",
                    n.cluster,
                    tags(&n.tags)
                ));
            }
            objects
        }
        RawTargetConfig::AwsEc2(e) => vec![format!(
            "aws_ec2 {} {}",
            tags(&e.tags),
            in_account(&e.region, &e.assume_role_arn)
        )],
        RawTargetConfig::AwsRds(r) => {
            let place = in_account(&r.region, &r.assume_role_arn);
            let mut objects: Vec<String> = r
                .instances
                .iter()
                .map(|name| format!("aws_rds instance '{name}' {place}"))
                .chain(
                    r.clusters
                        .iter()
                        .map(|name| format!("aws_rds cluster '{name}' {place}")),
                )
                .collect();
            if r.instances.is_empty() && r.clusters.is_empty() && !r.tags.is_empty() {
                objects.push(format!("aws_rds {} {place}", tags(&r.tags)));
            }
            objects
        }
    }
}
