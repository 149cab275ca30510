//! deploy/aws/iam-policy.json grants exactly the AWS operations the code calls.

use std::collections::BTreeSet;
use std::path::Path;

/// The IAM service prefix of the SDK client each source file uses.
const SOURCES: [(&str, &str); 6] = [
    ("src/providers/aws/asg.rs", "autoscaling"),
    ("src/providers/aws/fallback.rs", "autoscaling"),
    ("src/providers/aws/ec2.rs", "ec2"),
    ("src/providers/aws/prices.rs", "ec2"),
    ("src/providers/aws/eks.rs", "eks"),
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
                actions.insert(format!("{service}:{}", pascal(&name)));
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

// === the policy's conditions against the requests the code sends ===

use std::collections::BTreeMap;

use curfew::providers::aws::tags::{MANAGED_TAG, ORIGINAL_TAG};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";

fn policy() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/aws/iam-policy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What AWS knows about a request when it authorizes it.
#[derive(Debug, Clone, Default)]
struct Request {
    action: String,
    resource: String,
    /// The tags of the resource acted on.
    resource_tags: BTreeMap<String, String>,
    /// `aws:TagKeys`: the tag keys the request writes or removes.
    tag_keys: Option<Vec<String>>,
    /// Other single-valued keys (`ec2:IsLaunchTemplateResource`, `iam:PassedToService`).
    context: BTreeMap<String, String>,
}

impl Request {
    /// The values of condition key `key` in this request, `None` when it is absent.
    fn values(&self, key: &str) -> Option<Vec<String>> {
        if key == "aws:TagKeys" {
            return self.tag_keys.clone();
        }
        for prefix in [
            "aws:ResourceTag/",
            "autoscaling:ResourceTag/",
            "ec2:ResourceTag/",
        ] {
            if let Some(tag) = key.strip_prefix(prefix) {
                return self.resource_tags.get(tag).map(|v| vec![v.clone()]);
            }
        }
        self.context.get(key).map(|v| vec![v.clone()])
    }
}

/// Whether `pattern` (with IAM's `*` and `?`) matches all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // matches[j]: the pattern so far matches text[..j].
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    for p in &pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && text[j - 1] == *c,
            };
        }
        matches = next;
    }
    matches[text.len()]
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Bool(b) => vec![b.to_string()],
        other => panic!("not a string or a list of strings: {other}"),
    }
}

/// Whether condition `operator` on `key` with `expected` holds for `request`, as IAM decides.
fn condition_holds(operator: &str, key: &str, expected: &Value, request: &Request) -> bool {
    let expected = strings(expected);
    let actual = request.values(key);
    match operator {
        "StringEquals" => actual.is_some_and(|values| values.iter().any(|v| expected.contains(v))),
        "StringLike" => {
            actual.is_some_and(|values| values.iter().any(|v| expected.iter().any(|p| glob(p, v))))
        }
        "Bool" => actual.is_some_and(|values| {
            values
                .iter()
                .any(|v| expected.iter().any(|e| e.eq_ignore_ascii_case(v)))
        }),
        // Every value of the request is among the expected ones (true for no values at all).
        "ForAllValues:StringEquals" => actual
            .unwrap_or_default()
            .iter()
            .all(|v| expected.contains(v)),
        "Null" => expected.iter().all(|e| (e == "true") == actual.is_none()),
        other => panic!("the evaluator does not know the condition operator {other}: teach it"),
    }
}

fn statement_applies(statement: &Value, request: &Request) -> bool {
    for unsupported in ["NotAction", "NotResource", "Principal", "NotPrincipal"] {
        assert!(
            statement.get(unsupported).is_none(),
            "{unsupported} is not evaluated"
        );
    }
    let action = strings(&statement["Action"])
        .iter()
        .any(|a| glob(&a.to_lowercase(), &request.action.to_lowercase()));
    let resource = strings(&statement["Resource"])
        .iter()
        .any(|r| glob(r, &request.resource));
    let conditions = statement["Condition"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(operator, keys)| {
            keys.as_object()
                .unwrap()
                .iter()
                .all(|(key, expected)| condition_holds(operator, key, expected, request))
        });
    action && resource && conditions
}

/// Whether `policy` allows `request`: an Allow statement applies and no Deny does.
fn allows(policy: &Value, request: &Request) -> bool {
    let statements = policy["Statement"].as_array().unwrap();
    let applying = |effect: &str| {
        statements
            .iter()
            .filter(|s| s["Effect"] == effect)
            .any(|s| statement_applies(s, request))
    };
    applying("Allow") && !applying("Deny")
}

/// The request the code sends for `action` on the resource named `name` carrying `tags`.
fn request_the_code_sends(action: &str, name: &str, tags: &[(&str, &str)]) -> Request {
    let resource = match action.split_once(':').unwrap().0 {
        "autoscaling" => format!(
            "arn:aws:autoscaling:eu-central-1:{ACCOUNT}:autoScalingGroup:0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d:autoScalingGroupName/{name}"
        ),
        "ec2" => format!("arn:aws:ec2:eu-central-1:{ACCOUNT}:instance/{name}"),
        "eks" => format!(
            "arn:aws:eks:eu-central-1:{ACCOUNT}:nodegroup/staging/{name}/6ec7a5a2-0b1f-4d0e-9d56-0a1b2c3d4e5f"
        ),
        service => panic!("no request context for {service}: teach the test"),
    };
    // The tag calls write or remove the original-capacity tag, and nothing else.
    let writes_tags = matches!(
        action,
        "autoscaling:CreateOrUpdateTags"
            | "autoscaling:DeleteTags"
            | "ec2:CreateTags"
            | "ec2:DeleteTags"
    );
    Request {
        action: action.to_string(),
        resource,
        resource_tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tag_keys: writes_tags.then(|| vec![ORIGINAL_TAG.to_string()]),
        context: BTreeMap::new(),
    }
}

/// The calls of the code that change something on a resource, tagged or not.
fn changes_to_resources() -> Vec<String> {
    called_operations()
        .into_iter()
        .filter(|action| {
            let operation = action.split_once(':').unwrap().1;
            !["Describe", "List", "Get"]
                .iter()
                .any(|read| operation.starts_with(read))
        })
        .filter(|action| {
            // Assuming a role and the two checks AWS makes for a launch template are not
            // calls on a capacity resource; they are covered below.
            !matches!(
                action.as_str(),
                "sts:AssumeRole" | "ec2:RunInstances" | "iam:PassRole"
            )
        })
        .collect()
}

#[test]
fn every_change_the_code_makes_is_allowed_on_a_managed_resource_and_denied_on_an_untagged_one() {
    let policy = policy();
    let changes = changes_to_resources();
    assert!(changes.len() >= 10, "found only {changes:?}");
    for action in &changes {
        let managed = request_the_code_sends(action, "staging-nodes", &[(MANAGED_TAG, "true")]);
        assert!(
            allows(&policy, &managed),
            "{action} on a managed resource is denied"
        );
        for tags in [
            &[][..],
            &[(MANAGED_TAG, "false")][..],
            &[("env", "production")][..],
        ] {
            let request = request_the_code_sends(action, "production-nodes", tags);
            assert!(
                !allows(&policy, &request),
                "{action} on a resource tagged {tags:?} is allowed"
            );
        }
    }
}

#[test]
fn curfew_can_neither_enrol_a_resource_nor_change_other_tags() {
    let policy = policy();
    for action in [
        "autoscaling:CreateOrUpdateTags",
        "ec2:CreateTags",
        "ec2:DeleteTags",
    ] {
        let mut enrol = request_the_code_sends(action, "production-nodes", &[]);
        enrol.tag_keys = Some(vec![MANAGED_TAG.to_string()]);
        assert!(
            !allows(&policy, &enrol),
            "{action} enrols an untagged resource"
        );
        let mut other = request_the_code_sends(action, "staging-nodes", &[(MANAGED_TAG, "true")]);
        other.tag_keys = Some(vec![ORIGINAL_TAG.to_string(), "owner".to_string()]);
        assert!(!allows(&policy, &other), "{action} changes another tag");
        other.tag_keys = Some(vec![MANAGED_TAG.to_string()]);
        assert!(!allows(&policy, &other), "{action} changes the managed tag");
        other.tag_keys = None;
        assert!(!allows(&policy, &other), "{action} without naming its tags");
    }
}

#[test]
fn roles_are_assumed_only_when_named_curfew_and_launch_templates_only_as_templates() {
    let policy = policy();
    let assume = |role: &str| Request {
        action: "sts:AssumeRole".to_string(),
        resource: format!("arn:aws:iam::444455556666:role/{role}"),
        ..Request::default()
    };
    assert!(allows(&policy, &assume("curfew-staging")));
    for role in ["OrganizationAccountAccessRole", "admin", "staging-curfew"] {
        assert!(!allows(&policy, &assume(role)), "may assume {role}");
    }
    let launch = |from_template: &str| Request {
        action: "ec2:RunInstances".to_string(),
        resource: format!("arn:aws:ec2:eu-central-1:{ACCOUNT}:launch-template/lt-0abc"),
        context: BTreeMap::from([(
            "ec2:IsLaunchTemplateResource".to_string(),
            from_template.to_string(),
        )]),
        ..Request::default()
    };
    assert!(allows(&policy, &launch("true")));
    assert!(!allows(&policy, &launch("false")));
    let pass = |service: &str| Request {
        action: "iam:PassRole".to_string(),
        resource: format!("arn:aws:iam::{ACCOUNT}:role/staging-nodes"),
        context: BTreeMap::from([("iam:PassedToService".to_string(), service.to_string())]),
        ..Request::default()
    };
    assert!(allows(&policy, &pass("ec2.amazonaws.com")));
    assert!(!allows(&policy, &pass("lambda.amazonaws.com")));
}

#[test]
fn the_evaluator_reads_patterns_and_conditions_as_iam_does() {
    assert!(glob(
        "arn:aws:iam::*:role/curfew-*",
        "arn:aws:iam::1:role/curfew-a"
    ));
    assert!(!glob(
        "arn:aws:iam::*:role/curfew-*",
        "arn:aws:iam::1:role/admin"
    ));
    assert!(glob("ec2:Describe?nstances", "ec2:DescribeInstances"));
    let request = Request {
        tag_keys: Some(vec![]),
        ..Request::default()
    };
    let keys = Value::from(vec!["curfew:original-capacity"]);
    assert!(
        condition_holds("ForAllValues:StringEquals", "aws:TagKeys", &keys, &request),
        "ForAllValues holds for an empty set, which is why the policy also asks Null"
    );
    assert!(condition_holds(
        "Null",
        "aws:ResourceTag/x",
        &Value::from("true"),
        &request
    ));
    assert!(!condition_holds(
        "StringEquals",
        "aws:ResourceTag/x",
        &Value::from("true"),
        &request
    ));
}
