//! One load-generator client: connects (optionally from a chosen loopback source address), does
//! the WebSocket handshake, and reads the server's frames until told to stop, recording every
//! `order.created` it gets. One tokio task per client, through tokio-tungstenite (which answers
//! the server's pings itself).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpSocket;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::{id_key, now_us, Args, ClientStats, Frame, Shared};

/// Read buffer per client: the server's frames are a few hundred bytes, and 10,000 of the 128 KiB
/// default would be over a gigabyte in this process, which shares the machine with the server.
const READ_BUFFER: usize = 4 * 1024;

/// Runs client `i` until `stop` turns true (then it closes with 1000 and reports itself open at the
/// end) or the connection ends.
pub async fn run(
    i: usize,
    args: Arc<Args>,
    token: Arc<String>,
    account: Option<usize>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> ClientStats {
    let mut stats = ClientStats {
        account,
        ..ClientStats::default()
    };
    let permit = gate.acquire().await.ok();
    let mut ws = match connect(i, &args, &token).await {
        Ok(ws) => ws,
        Err(e) => {
            shared.error(e);
            return stats;
        }
    };
    drop(permit);
    stats.connected = true;
    shared.connected.fetch_add(1, Ordering::Relaxed);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => text(&mut stats, t.as_bytes(), now_us(), &shared),
                Some(Ok(Message::Close(f))) => {
                    stats.end_reason =
                        Some(format!("closed by server: {:?}", f.map(|f| u16::from(f.code))));
                    return stats;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    stats.end_reason = Some(format!("error: {e}"));
                    return stats;
                }
                None => {
                    stats.end_reason = Some("stream ended".into());
                    return stats;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    stats.open_at_end = true;
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    stats
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(i: usize, args: &Args, token: &str) -> Result<Ws, String> {
    let mut req = args
        .ws
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad url {}: {e}", args.ws))?;
    let auth = format!("Bearer {token}")
        .parse()
        .map_err(|_| "token is not a header value".to_owned())?;
    req.headers_mut().insert("authorization", auth);
    let host = req.uri().host().unwrap_or("127.0.0.1").to_owned();
    let port = req.uri().port_u16().unwrap_or(80);
    let dest = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut it) => it
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("resolve {host}: no IPv4 address"))?,
        Err(e) => return Err(format!("resolve: {e}")),
    };
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {}", e.kind()))?;
    if args.source_addrs > 1 {
        let src = Ipv4Addr::new(127, 0, 0, 2 + (i % args.source_addrs) as u8);
        socket
            .bind(SocketAddr::new(IpAddr::V4(src), 0))
            .map_err(|e| format!("bind {src}: {}", e.kind()))?;
    }
    let stream = socket
        .connect(dest)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

fn text(st: &mut ClientStats, payload: &[u8], recv: i64, shared: &Shared) {
    let Ok(f) = serde_json::from_slice::<Frame>(payload) else {
        st.other_events += 1;
        return;
    };
    match f.kind {
        "welcome" => {
            if !st.welcomed {
                st.welcomed = true;
                shared.welcomed.fetch_add(1, Ordering::Relaxed);
            }
        }
        "order.created" => {
            let at =
                f.at.and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
                    .map(|d| d.timestamp_micros());
            match (f.order, at) {
                (Some(o), Some(at)) => st.created.push((id_key(o.id), recv, recv - at)),
                _ => st.other_events += 1,
            }
        }
        "resync" => st.resyncs += 1,
        _ => st.other_events += 1,
    }
}
