//! `curfew run --once --dry-run`: the plan as a diff, per environment and tier: each target,
//! current → desired, the exact writes that would be sent and why; `--json` gives the same
//! as data. Nothing is written.

use serde_json::{Value, json};

use crate::calendar::format::utc_seconds;
use crate::domain::Tier;
use crate::reconciler::{PassReport, Preview};

/// Prints the diff of a dry-run pass; exit 1 when a target selection could not be read
/// (the diff then misses its targets), else 0.
pub fn print(report: &PassReport, as_json: bool) -> u8 {
    if as_json {
        println!("{}", to_json(report));
    } else {
        print!("{}", table(report));
    }
    if report.undiscovered.is_empty() {
        return 0;
    }
    super::print_unseen(
        "targets not discovered, so not in the diff:",
        report.unseen(),
    );
    1
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Databases => "databases",
        Tier::Nodes => "nodes",
        Tier::Stateful => "stateful",
        Tier::Workloads => "workloads",
    }
}

/// The previews of `environment`, grouped by tier in the order they would run.
fn tiers<'a>(report: &'a PassReport, environment: &str) -> Vec<(Tier, Vec<&'a Preview>)> {
    let mut tiers: Vec<(Tier, Vec<&Preview>)> = Vec::new();
    for preview in report
        .previews
        .iter()
        .filter(|p| p.environment == environment)
    {
        match tiers.last_mut() {
            Some((tier, previews)) if *tier == preview.tier => previews.push(preview),
            _ => tiers.push((preview.tier, vec![preview])),
        }
    }
    tiers
}

/// The diff as tables, one per environment and tier.
pub fn table(report: &PassReport) -> String {
    let writes: usize = report.previews.iter().map(|p| p.writes.len()).sum();
    let mut out = format!(
        "dry run at {}: {} change{}, {writes} write{}; nothing was written\n",
        utc_seconds(report.at),
        report.previews.len(),
        if report.previews.len() == 1 { "" } else { "s" },
        if writes == 1 { "" } else { "s" },
    );
    for decision in &report.decisions {
        out += &format!(
            "\n{}: {} ({})\n",
            decision.environment, decision.state, decision.reason
        );
        let tiers = tiers(report, &decision.environment);
        if tiers.is_empty() {
            out += "  nothing to change\n";
        }
        for (tier, previews) in tiers {
            out += &format!("  {}\n", tier_name(tier));
            let rows: Vec<[String; 3]> = previews
                .iter()
                .map(|p| {
                    [
                        p.target.clone(),
                        format!("{} -> {}", p.current, p.desired),
                        p.reason.clone(),
                    ]
                })
                .collect();
            let target_width = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max(6);
            let change_width = rows.iter().map(|r| r[1].len()).max().unwrap_or(0).max(17);
            out += &format!(
                "    {:<target_width$}  {:<change_width$}  WHY\n",
                "TARGET", "CURRENT -> DESIRED"
            );
            for (row, preview) in rows.iter().zip(&previews) {
                out += &format!(
                    "    {:<target_width$}  {:<change_width$}  {}\n",
                    row[0], row[1], row[2]
                );
                if preview.writes.is_empty() {
                    out += "      (the provider cannot describe this write)\n";
                }
                for write in &preview.writes {
                    out += &format!("      {}  {}\n", write.call, write.body);
                }
            }
        }
    }
    for skipped in &report.plan.skipped {
        out += &format!("\nleft alone {}: {}\n", skipped.target, skipped.reason);
    }
    out
}

/// The diff as one JSON document.
pub fn to_json(report: &PassReport) -> Value {
    let environments: Vec<Value> = report
        .decisions
        .iter()
        .map(|decision| {
            let tiers: Vec<Value> = tiers(report, &decision.environment)
                .into_iter()
                .map(|(tier, previews)| {
                    let changes: Vec<Value> = previews
                        .iter()
                        .map(|p| {
                            json!({
                                "target": p.target,
                                "current": p.current.to_string(),
                                "desired": p.desired.to_string(),
                                "writes": p.writes,
                                "reason": p.reason,
                            })
                        })
                        .collect();
                    json!({"tier": tier_name(tier), "changes": changes})
                })
                .collect();
            json!({
                "name": decision.environment,
                "state": decision.state.to_string(),
                "reason": decision.reason,
                "tiers": tiers,
            })
        })
        .collect();
    let skipped: Vec<Value> = report
        .plan
        .skipped
        .iter()
        .map(|s| json!({"target": s.target, "environment": s.environment, "reason": s.reason}))
        .collect();
    let undiscovered: Vec<Value> = report
        .undiscovered
        .iter()
        .map(|u| json!({"environment": u.environment, "selection": u.selection, "error": u.error.with_hint()}))
        .collect();
    json!({
        "at": utc_seconds(report.at),
        "dry_run": true,
        "environments": environments,
        "left_alone": skipped,
        "undiscovered": undiscovered,
    })
}
