//! Turning AWS SDK errors into provider errors that say the call and the AWS error code.

use aws_sdk_autoscaling::config::http::HttpResponse;
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
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::Server {
            operation,
            target,
            code: "Dispatch".to_string(),
            detail: format!("{err:?}"),
        },
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let detail = service.err().message().unwrap_or_default().to_string();
            if THROTTLING.contains(&code.as_str()) || status == Some(429) {
                Error::Throttled {
                    operation,
                    target,
                    detail: format!("{code}: {detail}"),
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
