//! Turning AWS SDK errors into provider errors that say the call and the AWS error code.

use aws_sdk_autoscaling::config::http::HttpResponse;
use aws_sdk_autoscaling::config::interceptors::InterceptorContext;
use aws_sdk_autoscaling::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};

use crate::providers::Error;

/// Codes AWS uses for throttling.
const THROTTLING: [&str; 5] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
];

/// Codes AWS uses for an object that does not exist, in the calls curfew makes (EKS, EC2).
const NOT_FOUND: [&str; 4] = [
    "ResourceNotFoundException",
    "NotFoundException",
    "InvalidInstanceID.NotFound",
    "InvalidLaunchTemplateId.NotFound",
];

/// Has the SDK retry an answer by its HTTP status alone: 429 as throttling and 5xx as a
/// server error, also when the body is not an AWS error the SDK can read (a proxy or a load
/// balancer in front of the API answered). Answers with a readable AWS error code are left to
/// the SDK's own classifiers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByStatus;

impl ClassifyRetry for ByStatus {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().map(|response| response.status().as_u16()) {
            Some(429) => RetryAction::throttling_error(),
            Some(500..=599) => RetryAction::server_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "curfew: retry by HTTP status"
    }
}

/// `HTTP 503` for a status, `Unknown` without one.
fn http_code(status: Option<u16>) -> String {
    status.map_or_else(|| "Unknown".to_string(), |status| format!("HTTP {status}"))
}

/// Classifies a failed SDK call on `target` by its AWS error code and HTTP status.
pub fn classify<E>(operation: &str, target: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    let status = err.raw_response().map(|raw| raw.status().as_u16());
    let operation = operation.to_string();
    let target = target.to_string();
    match &err {
        SdkError::TimeoutError(_) => Error::Timeout { operation, target },
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            Error::Timeout { operation, target }
        }
        // An answer whose body could not be read still says by its status what it was.
        SdkError::ResponseError(_) if status == Some(429) => Error::Throttled {
            operation,
            target,
            detail: "HTTP 429 with an unreadable body".to_string(),
            retry_after: None,
        },
        SdkError::ResponseError(_) if status.is_some_and(|s| s >= 500) => Error::Server {
            operation,
            target,
            code: http_code(status),
            detail: "an unreadable body".to_string(),
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::Server {
            operation,
            target,
            code: "Dispatch".to_string(),
            detail: format!("{err:?}"),
        },
        SdkError::ServiceError(service) => {
            // The AWS error code when AWS sent one, else the HTTP status.
            let code = service
                .err()
                .code()
                .map_or_else(|| http_code(status), str::to_string);
            let detail = service.err().message().unwrap_or_default().to_string();
            if THROTTLING.contains(&code.as_str()) || status == Some(429) {
                Error::Throttled {
                    operation,
                    target,
                    detail: format!("{code}: {detail}"),
                    retry_after: None,
                }
            } else if status.is_some_and(|s| s >= 500) {
                Error::Server {
                    operation,
                    target,
                    code,
                    detail,
                }
            } else if NOT_FOUND.contains(&code.as_str()) {
                Error::NotFound { operation, target }
            } else {
                Error::Permanent {
                    operation,
                    target,
                    code,
                    detail,
                }
            }
        }
        _ => Error::Permanent {
            operation,
            target,
            code: "Client".to_string(),
            detail: format!("{err:?}"),
        },
    }
}
