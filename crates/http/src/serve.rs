//! The accept loop: HTTP/1.1 on each connection (nginx and browsers speak it to us), with upgrades
//! and graceful shutdown.
//!
//! Why not `axum::serve`: it serves through hyper-util's protocol-sniffing builder, which wraps every
//! socket in a private type, so an upgraded WebSocket can only be reached through a boxed stream.
//! Here hyper is given the `TcpStream` itself, and the WebSocket route takes it back after the
//! upgrade (`Upgraded::downcast`): the hub then writes each event's pre-encoded frame straight to
//! the socket from its fan-out threads, instead of waking a task per connection (see
//! `events::link`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `app` on `listener` until `signal` resolves, then stops accepting and waits for every
/// request in flight (upgraded connections are the hub's to close).
pub(crate) async fn run(
    app: Router,
    listener: TcpListener,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    // `stop` tells every connection to finish its request in flight and close; each one holds a
    // `done` receiver, so `done_tx.closed()` resolves once the last has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut signal = std::pin::pin!(signal);
    // hyper's defaults, as `axum::serve` used them. No header read timeout: nginx keeps idle
    // upstream connections open (`keepalive`), and one closed by us just as nginx sends a POST on
    // it would fail that POST; nginx itself times out slow clients.
    let http = hyper::server::conn::http1::Builder::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        // No Nagle: a live event written while the previous one is still unacknowledged (the
        // client delays its ACKs, up to 40 ms) would otherwise wait for that ACK.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            },
        ));
        let conn = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Per-connection failures (the peer reset before we accepted) are nothing to wait for; anything
/// else (out of file descriptors) gets a pause so the loop does not spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
