//! The demo's own upstream: a tiny web server standing in for the preview environment's
//! application, so the wake gateway has something to forward to.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::Uri;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Starts the upstream on a free loopback port and points every `wake.upstream` of `config`
/// at it; returns the configuration and the server's task.
pub async fn start(mut config: Config) -> std::io::Result<(Arc<Config>, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    let uri: Uri = format!("http://{address}/")
        .parse()
        .map_err(|err| std::io::Error::other(format!("{err}")))?;
    for environment in config.environments.values_mut() {
        if let Some(wake) = environment.wake.as_mut().filter(|w| w.upstream.is_some()) {
            wake.upstream = Some(uri.clone());
        }
    }
    let app = Router::new().fallback(|uri: Uri| async move {
        format!("hello from the preview environment: you asked for {uri}\n")
    });
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "the demo's upstream stopped");
        }
    });
    Ok((Arc::new(config), task))
}
