//! Turning AWS SDK errors into provider errors that say the call and the AWS error code.

use aws_sdk_autoscaling::config::http::HttpResponse;
use aws_sdk_autoscaling::config::interceptors::InterceptorContext;
use aws_sdk_autoscaling::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};

use crate::providers::Error;
use crate::providers::hints;

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
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
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
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            if causes(&err).contains("credentials") {
                Error::Permanent {
                    operation,
                    target,
                    code: hints::NO_CREDENTIALS.to_string(),
                    detail: "no AWS credentials found".to_string(),
                }
            } else {
                Error::Server {
                    operation,
                    target,
                    code: hints::UNREACHABLE.to_string(),
                    detail: root_cause(&err),
                }
            }
        }
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
        _ if causes(&err).contains("credentials") => Error::Permanent {
            operation,
            target,
            code: hints::NO_CREDENTIALS.to_string(),
            detail: "no AWS credentials found".to_string(),
        },
        _ => Error::Permanent {
            operation,
            target,
            code: "Client".to_string(),
            detail: root_cause(&err),
        },
    }
}

/// Longest detail kept from an SDK error's causes.
const DETAIL_LIMIT: usize = 100;

/// The messages of an error and its causes, outermost first: to recognise a cause.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = Vec::new();
    let mut next = Some(err);
    while let Some(current) = next {
        messages.push(current.to_string());
        next = current.source();
    }
    messages.join(": ")
}

/// The innermost cause's first line, escaped and cut to [`DETAIL_LIMIT`] characters: one
/// readable line instead of the SDK's debug text ("Connection refused (os error 111)").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let message = innermost.to_string();
    let line = crate::text::escape(message.lines().next().unwrap_or_default()).into_owned();
    match line.char_indices().nth(DETAIL_LIMIT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
