//! Serving: axum's server with no Nagle on accepted sockets, and the shutdown sequence (drain,
//! then stop accepting and finish in-flight requests, then close the WebSocket connections).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

use crate::state::AppState;

/// How long the WebSocket connections get to send their close frames once the server stopped.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` until `shutdown` resolves; then readiness turns 503 for
/// `SHUTDOWN_DRAIN_MS` while requests are still answered, then the listener closes and in-flight
/// requests finish, then the WebSocket connections close with 1001.
pub(crate) async fn run(
    app: Router,
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let drain = state.config.http.shutdown_drain;
    let st = state.clone();
    let signal = async move {
        shutdown.await;
        st.start_draining();
        tracing::info!(
            drain_ms = drain.as_millis() as u64,
            "shutdown requested; draining"
        );
        tokio::time::sleep(drain).await;
        tracing::info!("closing listener; finishing in-flight requests");
        // Upgraded WebSocket connections are not tracked by the server's graceful shutdown (their
        // HTTP connection ended with the upgrade): tell them to send their close frames.
        st.hub.begin_shutdown();
    };
    // No Nagle: a live event written while the previous one is still unacknowledged (the client
    // delays its ACKs, up to 40 ms) would otherwise wait for that ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // No header read timeout (axum's server sets no timer): nginx keeps idle upstream connections
    // open (`keepalive`), and one closed by us just as nginx sends a POST on it would fail that
    // POST; nginx itself times out slow clients.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;
    // The listener is closed and plain requests are done; give the WebSocket connections (told to
    // close by `begin_shutdown`) a moment to get their close frames out.
    let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
    while state.hub.connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
