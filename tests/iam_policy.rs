//! deploy/aws/iam-policy.json grants exactly the AWS operations the code calls.

use std::collections::BTreeSet;
use std::path::Path;

/// The IAM service prefix of the SDK client each source file uses.
const SOURCES: [(&str, &str); 7] = [
    ("src/providers/aws/asg.rs", "autoscaling"),
    ("src/providers/aws/fallback.rs", "autoscaling"),
    ("src/providers/aws/ec2.rs", "ec2"),
    ("src/providers/aws/prices.rs", "ec2"),
    ("src/providers/aws/eks.rs", "eks"),
    ("src/providers/aws/rds.rs", "rds"),
    ("src/providers/aws/mod.rs", "sts"),
];

/// Actions AWS checks on behalf of a call rather than calls of their own: sending a launch
/// template (inside a MixedInstancesPolicy) to UpdateAutoScalingGroup needs the right to
/// launch from it and to pass its instance role.
const IMPLIED: [(&str, &str, &[&str]); 1] = [(
    "src/providers/aws/asg.rs",
    "set_mixed_instances_policy",
    &["ec2:RunInstances", "iam:PassRole"],
)];

/// `describe_auto_scaling_groups` → `DescribeAutoScalingGroups`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The IAM action of SDK operation `snake` of `service`: RDS spells `DB` in capitals
/// (`describe_db_instances` → `DescribeDBInstances`).
fn iam_name(service: &str, snake: &str) -> String {
    let action = pascal(snake);
    match service {
        "rds" => action.replace("Db", "DB"),
        _ => action,
    }
}

/// Operations called as `client.operation()` (across line breaks), as IAM actions.
fn called_operations() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut actions = BTreeSet::new();
    for (file, service) in SOURCES {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let compact: String = source.split_whitespace().collect();
        for call in compact.split("client.").skip(1) {
            let name: String = call
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if call[name.len()..].starts_with("()") && !name.is_empty() {
                actions.insert(format!("{service}:{}", iam_name(service, &name)));
            }
        }
        if source.contains("AssumeRoleProvider") {
            actions.insert("sts:AssumeRole".to_string());
        }
    }
    for (file, marker, implied) in IMPLIED {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        if source.contains(marker) {
            actions.extend(implied.iter().map(|a| a.to_string()));
        }
    }
    actions
}

fn granted_actions() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/aws/iam-policy.json");
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|statement| statement["Action"].as_array().unwrap().clone())
        .map(|action| action.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_iam_policy_grants_exactly_what_the_code_calls() {
    let called = called_operations();
    let granted = granted_actions();
    assert!(called.len() >= 13, "found only {called:?}");
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "the code calls operations the policy does not allow: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "the policy allows operations the code never calls: {unused:?}"
    );
}
