//! Hints for the common causes of a failed provider call: what an operator should change.
//!
//! A hint is chosen from the error's code and operation alone, so it reads the same in the
//! log, in `run --once` and in `check --discover`.

use super::Error;

/// The code the AWS provider gives a call that found no credentials.
pub const NO_CREDENTIALS: &str = "NoCredentials";

/// The code the AWS provider gives a call that could not reach its endpoint.
pub const UNREACHABLE: &str = "Unreachable";

/// AWS error codes that mean the caller lacks an IAM permission.
const ACCESS_DENIED: [&str; 6] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthorizationError",
    "NotAuthorized",
];

/// AWS error codes that mean the credentials themselves were refused.
const BAD_CREDENTIALS: [&str; 5] = [
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "AuthFailure",
];

/// The IAM service prefix of each AWS operation curfew calls.
const IAM_SERVICES: [(&str, &str); 25] = [
    ("DescribeAutoScalingGroups", "autoscaling"),
    ("UpdateAutoScalingGroup", "autoscaling"),
    ("CreateOrUpdateTags", "autoscaling"),
    ("SuspendProcesses", "autoscaling"),
    ("ResumeProcesses", "autoscaling"),
    ("DescribeScalingActivities", "autoscaling"),
    ("DescribeInstances", "ec2"),
    ("StartInstances", "ec2"),
    ("StopInstances", "ec2"),
    ("CreateTags", "ec2"),
    ("DescribeSpotPriceHistory", "ec2"),
    ("ListNodegroups", "eks"),
    ("DescribeNodegroup", "eks"),
    ("UpdateNodegroupConfig", "eks"),
    ("DescribeDBInstances", "rds"),
    ("DescribeDBClusters", "rds"),
    ("StartDBInstance", "rds"),
    ("StopDBInstance", "rds"),
    ("StartDBCluster", "rds"),
    ("StopDBCluster", "rds"),
    ("AddTagsToResource", "rds"),
    ("RemoveTagsFromResource", "rds"),
    ("DescribeEvents", "rds"),
    ("AssumeRole", "sts"),
    ("GetCallerIdentity", "sts"),
];

/// The hint for `error`, if its cause is a common one.
pub fn hint(error: &Error) -> Option<String> {
    let operation = error.operation();
    let code = error.code();
    let kubernetes = is_kubernetes(operation);
    match error {
        Error::Throttled { .. } => Some(if kubernetes {
            "the API server is throttling curfew: lower `kubernetes.concurrency` or set `kubernetes.qps`".to_string()
        } else {
            "AWS is throttling curfew: lower `reconciler.concurrency`, or ask AWS for a higher API rate".to_string()
        }),
        Error::Timeout { .. } if kubernetes => Some(
            "the API server did not answer in time: check that it is reachable from here (`kubectl get --raw /readyz`)".to_string(),
        ),
        Error::Timeout { .. } => Some(
            "AWS did not answer in time: check the network path to the endpoint (proxy, VPC endpoint, AWS_ENDPOINT_URL)".to_string(),
        ),
        _ if code == NO_CREDENTIALS => Some(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE, or run with an instance or pod role".to_string(),
        ),
        _ if code == UNREACHABLE => Some(
            "check AWS_ENDPOINT_URL (when it is unset, curfew calls AWS's own endpoints), the target's region and the network path".to_string(),
        ),
        _ if ACCESS_DENIED.contains(&code) => Some(format!(
            "allow {} in the IAM policy of curfew's role (deploy/aws/iam-policy.json has them all)",
            iam_action(operation)
        )),
        _ if BAD_CREDENTIALS.contains(&code) => Some(
            "AWS refused the credentials: check AWS_ACCESS_KEY_ID, AWS_PROFILE or the role curfew runs as, and that they have not expired".to_string(),
        ),
        _ if kubernetes && code.starts_with("403") => Some(format!(
            "grant curfew's ServiceAccount the `{}` verb on {} (deploy/kubernetes/base has the Role curfew needs)",
            rbac_verb(operation),
            kube_resource(error)
        )),
        _ if kubernetes && code.starts_with("401") => Some(
            "the API server refused curfew's credentials: check the user or token of the kubeconfig's current context".to_string(),
        ),
        _ => None,
    }
}

/// Whether `operation` is a call to the Kubernetes API (`apply`, `list deployments`,
/// `ready`): AWS operations are PascalCase.
fn is_kubernetes(operation: &str) -> bool {
    operation.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The IAM action of an AWS operation, e.g. `autoscaling:UpdateAutoScalingGroup`.
fn iam_action(operation: &str) -> String {
    if operation == "DeleteTags" {
        // Both services have it: groups and instances.
        return "autoscaling:DeleteTags (groups) or ec2:DeleteTags (instances)".to_string();
    }
    match IAM_SERVICES.iter().find(|(name, _)| *name == operation) {
        Some((name, service)) => format!("{service}:{name}"),
        None => format!("the action of {operation}"),
    }
}

/// The RBAC verb an operation needs.
fn rbac_verb(operation: &str) -> &'static str {
    match operation.split_whitespace().next() {
        Some("apply") => "patch",
        Some("list") => "list` and `watch",
        _ => "get",
    }
}

/// The resource an operation was on: `deployments` for `list deployments`, the target's
/// kind for a write (`deployment/shop/web`).
fn kube_resource(error: &Error) -> String {
    let operation = error.operation();
    if let Some(resource) = operation.strip_prefix("list ") {
        return resource.to_string();
    }
    let target = match error {
        Error::Throttled { target, .. }
        | Error::Server { target, .. }
        | Error::Timeout { target, .. }
        | Error::Conflict { target, .. }
        | Error::NotFound { target, .. }
        | Error::Permanent { target, .. } => target,
    };
    match target.split('/').next() {
        Some(kind) if !kind.is_empty() && target.contains('/') => format!("{kind}s"),
        _ => "the target's kind".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permanent(operation: &str, target: &str, code: &str) -> Error {
        Error::Permanent {
            operation: operation.to_string(),
            target: target.to_string(),
            code: code.to_string(),
            detail: "denied".to_string(),
        }
    }

    #[test]
    fn access_denied_names_the_missing_iam_action() {
        let error = permanent("UpdateAutoScalingGroup", "staging-nodes", "AccessDenied");
        let line = error.with_hint();
        assert!(
            line.contains("allow autoscaling:UpdateAutoScalingGroup in the IAM policy"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn forbidden_names_the_rbac_verb_and_resource() {
        let write = permanent("apply", "deployment/shop/web", "403 Forbidden");
        assert!(
            write
                .with_hint()
                .contains("the `patch` verb on deployments"),
            "{}",
            write.with_hint()
        );
        let list = permanent("list statefulsets", "*", "403 Forbidden");
        assert!(
            list.with_hint()
                .contains("the `list` and `watch` verb on statefulsets"),
            "{}",
            list.with_hint()
        );
    }

    #[test]
    fn missing_credentials_name_the_variables_curfew_reads() {
        let error = permanent("DescribeAutoScalingGroups", "staging-nodes", NO_CREDENTIALS);
        let hint = error.hint().unwrap();
        assert!(hint.contains("AWS_ACCESS_KEY_ID") && hint.contains("AWS_PROFILE"));
    }

    #[test]
    fn an_error_without_a_common_cause_has_no_hint() {
        let error = permanent("UpdateAutoScalingGroup", "staging-nodes", "ValidationError");
        assert_eq!(error.hint(), None);
        assert_eq!(error.with_hint(), error.to_string());
    }
}
