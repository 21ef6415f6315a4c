//! `GET /api/v1/ws`: authenticated before the upgrade (cookie, `Authorization`, or
//! `?access_token=`), limited per instance and per user, pinged every 30 s, closed with a
//! close frame on shutdown. A client that falls behind is told to resync instead of being
//! silently dropped; `?since=<seq>` replays what a reconnecting client missed.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use serde::Deserialize;
use serde_json::json;
use till_db::outbox;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::Event;
use crate::auth::{self, session, AuthOutcome, Principal};
use crate::error::ApiError;
use crate::extract::{Credentials, Query};
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(30);
/// No pong for this long: the peer is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// A send that takes longer means the client is not reading; drop it rather than buffer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Replay at most this many missed events; beyond that the client must reload.
const MAX_REPLAY: i64 = 1000;
/// Read buffer per connection. Clients only send pongs and close frames, and tungstenite
/// zero-fills the buffer's spare room on every read (so it is resident, and costs a memset per
/// wake-up): its 128 KiB default cost ~150 KiB of RSS per connection, 1.5 GB for 10,000
/// (loadtests/ws.sh), and at 4 KiB the memset was still 4 % of a busy instance's CPU. Larger
/// frames are read in several steps.
const READ_BUFFER: usize = 1024;
/// Events already queued for a connection are written together (one flush) up to this many. Kept
/// small: the connection's write buffer keeps the capacity of its largest batch (~8 × 400 bytes).
const MAX_BATCH: usize = 8;

#[derive(Deserialize)]
pub struct WsParams {
    access_token: Option<String>,
    since: Option<i64>,
}

pub async fn handler(
    State(state): State<AppState>,
    Query(params): Query<WsParams>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let outcome = match &params.access_token {
        Some(t) => auth::resolve_token(&state, t).await,
        None => match parts.extensions.get::<Credentials>() {
            Some(Credentials(o)) => o.clone(),
            None => auth::resolve(&state, &parts.headers).await,
        },
    };
    let principal = match outcome {
        AuthOutcome::Authenticated(p) => p,
        AuthOutcome::Unavailable => {
            return Err(ApiError::unavailable("Sign-in service unavailable."))
        }
        _ => return Err(ApiError::unauthorized()),
    };
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|_| ApiError::bad_request("Expected a WebSocket upgrade request."))?;
    let cfg = &state.config;
    match state.hub.try_admit(
        principal.user_id,
        cfg.ws_max_connections,
        cfg.ws_max_per_user,
    ) {
        Ok(()) => {}
        Err(true) => {
            return Err(ApiError::unavailable(
                "This server has no room for more live connections.",
            ))
        }
        Err(false) => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many live connections for this account.",
            ))
        }
    }
    let user = principal.user_id;
    state
        .metrics
        .ws_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .on_failed_upgrade({
            let state = state.clone();
            move |_| {
                state.hub.release(user);
                state
                    .metrics
                    .ws_connections
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .on_upgrade(move |socket| async move {
            connection(&state, &principal, params.since, socket).await;
            state.hub.release(user);
            state
                .metrics
                .ws_connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        })
        .into_response())
}

async fn send(socket: &mut WebSocket, text: impl Into<Utf8Bytes>) -> bool {
    matches!(
        within_send_timeout(socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

/// `fut` under [`SEND_TIMEOUT`]; the timer is armed only when it does not finish at once (the
/// common case: the socket has room), which saves a timer per event per connection.
async fn within_send_timeout<F: std::future::Future>(
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut fut = std::pin::pin!(fut);
    match futures::poll!(fut.as_mut()) {
        std::task::Poll::Ready(out) => Ok(out),
        std::task::Poll::Pending => tokio::time::timeout(SEND_TIMEOUT, fut).await,
    }
}

fn frame(kind: &str, seq: i64) -> String {
    json!({"type": kind, "at": chrono::Utc::now(), "seq": seq}).to_string()
}

async fn connection(state: &AppState, p: &Principal, since: Option<i64>, mut socket: WebSocket) {
    let staff_side = p.role.is_staff_side();
    let visible = |e: &Event| e.visible_to(staff_side, p.customer_id);
    // Subscribe before replaying so nothing falls between the replay and the live stream.
    let mut feed = state.hub.subscribe(staff_side, p.customer_id);
    let rx = &mut feed.rx;
    let mut shutdown = state.hub.shutdown_signal();
    let mut sent_up_to = state.hub.last_seq();
    if !send(&mut socket, frame("welcome", sent_up_to)).await {
        return;
    }
    if let Some(since) = since.filter(|s| *s < sent_up_to) {
        match outbox::after(&state.db.write, since, MAX_REPLAY).await {
            Ok(rows) if rows.len() as i64 == MAX_REPLAY => {
                if !send(&mut socket, frame("resync", sent_up_to)).await {
                    return;
                }
            }
            Ok(rows) => {
                for ev in rows.iter().map(Event::from_row).filter(|e| visible(e)) {
                    if !send(&mut socket, ev.frame).await {
                        return;
                    }
                }
                sent_up_to = sent_up_to.max(rows.last().map(|r| r.seq).unwrap_or(0));
            }
            Err(_) => {
                if !send(&mut socket, frame("resync", sent_up_to)).await {
                    return;
                }
            }
        }
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_seen = Instant::now();
    loop {
        tokio::select! {
            // Events first, and only events when one is waiting: a wake-up for an event then
            // polls nothing else (unbiased, three times in four it would first try the socket's
            // read side, the ping timer and the shutdown signal, for each of 10,000 connections
            // per event). Pongs and closes are read as soon as no event is queued.
            biased;
            ev = rx.recv() => {
                if matches!(ev, Err(RecvError::Closed)) {
                    return;
                }
                // Write this event and any already queued behind it with one flush: under a burst
                // (or on a busy machine) that is one write per connection, not one per event.
                let mut next = Some(ev);
                let batch = async {
                    let mut fed = 0;
                    while let Some(ev) = next.take() {
                        match ev {
                            Ok(ev) => {
                                if ev.seq > sent_up_to && visible(&ev) {
                                    sent_up_to = ev.seq;
                                    socket.feed(Message::Text(ev.frame.clone())).await?;
                                    fed += 1;
                                }
                            }
                            Err(_) => {
                                let resync = frame("resync", state.hub.last_seq());
                                socket.feed(Message::Text(resync.into())).await?;
                                fed += 1;
                            }
                        }
                        if fed < MAX_BATCH {
                            next = match rx.try_recv() {
                                Ok(ev) => Some(Ok(ev)),
                                Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                                Err(TryRecvError::Empty | TryRecvError::Closed) => None,
                            };
                        }
                    }
                    socket.flush().await
                };
                if !matches!(within_send_timeout(batch).await, Ok(Ok(()))) {
                    return;
                }
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => last_seen = Instant::now(),
            },
            _ = ping.tick() => {
                // Signed out or deactivated since connecting: end the stream.
                if matches!(session::get(&state.store, &p.session_id).await, Ok(None)) {
                    close(&mut socket, 4401, "session ended").await;
                    return;
                }
                if last_seen.elapsed() > IDLE_LIMIT {
                    close(&mut socket, 1001, "idle").await;
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => {
                close(&mut socket, 1001, "server shutting down").await;
                return;
            }
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
