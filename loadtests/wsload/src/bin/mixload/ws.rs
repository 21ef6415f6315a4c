//! The WebSocket side of the shop: staff boards (every event) and customers (their own orders)
//! connected to `/api/v1/ws` for the whole run, as the till's board screens and the shop's
//! order-status pages are. Each client counts the frames it gets and how late live events arrive;
//! a connection that fails or drops counts as an error and comes back (with `?since=` its last
//! `seq`, as the web UI does) after a second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// What every client adds to, read by the report.
#[derive(Default)]
pub struct WsShared {
    /// Set while the measured window runs: frames are counted only then.
    pub measuring: AtomicBool,
    /// Clients holding an open, welcomed connection right now.
    pub open: AtomicUsize,
    /// Clients that got their first `welcome`.
    pub welcomed_once: AtomicUsize,
    pub frames: AtomicU64,
    pub events: AtomicU64,
    pub resyncs: AtomicU64,
    /// Failed connection attempts and connections that ended without being asked to (any time,
    /// not only in the window: a dropped board is an error whenever it happens).
    pub errors: Mutex<BTreeMap<String, u64>>,
}

impl WsShared {
    fn error(&self, what: String) {
        *self.errors.lock().unwrap().entry(what).or_default() += 1;
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    seq: Option<u64>,
    #[serde(borrow)]
    at: Option<&'a str>,
}

/// Read buffer per client: frames are a few hundred bytes, and the 128 KiB default would be
/// wasted memory in a process that shares the machine with the server.
const READ_BUFFER: usize = 8 * 1024;

/// Runs one client until `stop`; returns the delays (receive − event `at`, µs) of the live
/// events it got in the window.
pub async fn client(
    url: String,
    token: Arc<String>,
    shared: Arc<WsShared>,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut delays = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
    let mut since: Option<u64> = None;
    let mut ever_welcomed = false;
    loop {
        if *stop.borrow() {
            return delays;
        }
        let permit = gate.acquire().await.ok();
        let conn = connect(&url, &token, since).await;
        drop(permit);
        let mut ws = match conn {
            Ok(ws) => ws,
            Err(e) => {
                shared.error(format!("connect: {e}"));
                if pause(&mut stop).await {
                    return delays;
                }
                continue;
            }
        };
        let mut welcomed = false;
        let ended = loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let Ok(f) = serde_json::from_str::<Frame>(t.as_str()) else {
                            continue;
                        };
                        if let Some(s) = f.seq {
                            since = Some(since.map_or(s, |o| o.max(s)));
                        }
                        if f.kind == "welcome" && !welcomed {
                            welcomed = true;
                            shared.open.fetch_add(1, Ordering::Relaxed);
                            // Counted once per client, however often it reconnects.
                            if !ever_welcomed {
                                ever_welcomed = true;
                                shared.welcomed_once.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        if !shared.measuring.load(Ordering::Relaxed) {
                            continue;
                        }
                        shared.frames.fetch_add(1, Ordering::Relaxed);
                        match f.kind {
                            "welcome" => {}
                            "resync" => {
                                shared.resyncs.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                shared.events.fetch_add(1, Ordering::Relaxed);
                                let at = f.at.and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok());
                                if let Some(at) = at {
                                    let d = chrono::Utc::now().timestamp_micros() - at.timestamp_micros();
                                    let _ = delays.record(d.max(1) as u64);
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        break Some(format!("closed by server: {:?}", f.map(|f| u16::from(f.code))));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some(format!("read: {e}")),
                    None => break Some("stream ended".to_owned()),
                },
                _ = stop.wait_for(|s| *s) => break None,
            }
        };
        if welcomed {
            shared.open.fetch_sub(1, Ordering::Relaxed);
        }
        match ended {
            None => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return delays;
            }
            Some(why) => {
                shared.error(why);
                if pause(&mut stop).await {
                    return delays;
                }
            }
        }
    }
}

/// Waits a second before reconnecting; true when told to stop meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str, since: Option<u64>) -> Result<Ws, String> {
    let url = match since {
        Some(s) => format!("{url}?since={s}"),
        None => url.to_owned(),
    };
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad url {url}: {e}"))?;
    let auth = format!("Bearer {token}")
        .parse()
        .map_err(|_| "token is not a header value".to_owned())?;
    req.headers_mut().insert("authorization", auth);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(req, Some(config), true),
    )
    .await
    .map_err(|_| "handshake timed out (10 s)".to_owned())?
    .map_err(|e| e.to_string())?;
    Ok(ws)
}
