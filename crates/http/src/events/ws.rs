//! `GET /api/v1/ws`: authenticated before the upgrade (cookie, `Authorization`, or
//! `?access_token=`), limited per instance and per user, pinged every 30 s, closed with a
//! close frame on shutdown. A client that falls behind is told to resync instead of being
//! silently dropped; `?since=<seq>` replays what a reconnecting client missed.
//!
//! One task per connection (axum's upgrade, tungstenite's codec): it sends the welcome and any
//! replay, then forwards the connection's [`Feed`] and answers the client, until either side ends.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use till_db::outbox;
use uuid::Uuid;

use super::hub::{Feed, Next};
use super::Event;
use crate::auth::{self, AuthOutcome, Principal};
use crate::error::ApiError;
use crate::extract::{Credentials, Query};
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(30);
/// No pong for this long: the peer is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// A send that makes no progress for this long means the client is not reading: drop it.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for its close frame to leave.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Replay at most this many missed events; beyond that the client must reload.
const MAX_REPLAY: i64 = 1000;
/// Largest message (and frame) a client may send: it only sends pongs, pings and close frames.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// Read buffer per connection, allocated up front and zero-filled by tungstenite on every read,
/// so it is resident: the 128 KiB default would be ~1.3 GB for 10,000 connections. Larger
/// frames are read in several steps.
const READ_BUFFER: usize = 1024;
/// Frames are gathered up to this many bytes before a write (then one flush writes the rest): a
/// burst costs a few writes per connection, not one per event. The write buffer keeps the
/// capacity of its largest batch, so this stays small.
const WRITE_BUFFER: usize = 2 * 1024;
/// Safety net: the write buffer never holds more than one batch (see `forward`), as the task
/// waits for the socket before queueing more.
const MAX_WRITE_BUFFER: usize = 64 * 1024;
/// Events already waiting for a connection that go out with one flush, at most.
const MAX_BATCH: usize = 16;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsParams {
    /// A bearer token, for clients that cannot set headers (browsers' WebSocket API).
    access_token: Option<String>,
    /// The last event sequence number seen: missed events are replayed first.
    since: Option<i64>,
}

/// Upgrades to a WebSocket of live order events (text frames `{"type", "at", "order"|"product"}`).
#[utoipa::path(
    get,
    path = "/ws",
    tag = "live",
    security(("bearer" = [])),
    params(WsParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`bad_request`: not a WebSocket upgrade request", body = crate::openapi::schemas::ErrorBody),
        (status = 429, description = "`rate_limited`: too many live connections for this account", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "`service_unavailable`: this instance has no room for more connections", body = crate::openapi::schemas::ErrorBody),
    )
)]
pub async fn handler(
    State(state): State<AppState>,
    Query(params): Query<WsParams>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    // A page from another site must not ride the user's cookie into the live feed (cross-site
    // WebSocket hijacking: browsers send cookies with cross-origin upgrades).
    if !origin_allowed(&parts.headers, &state.config.http.allowed_origins) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This origin may not open the live feed.",
        ));
    }
    let outcome = match &params.access_token {
        Some(t) => auth::resolve_token(&state, t).await,
        None => match parts.extensions.get::<Credentials>() {
            Some(Credentials(o)) => o.clone(),
            None => auth::resolve(&state, &parts.headers).await,
        },
    };
    let principal = match outcome {
        AuthOutcome::Authenticated(p) => p,
        AuthOutcome::Unavailable(cause) => {
            return Err(ApiError::unavailable("Sign-in service unavailable.").with_source(cause))
        }
        _ => return Err(ApiError::unauthorized()),
    };
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|_| ApiError::bad_request("Expected a WebSocket upgrade request."))?;
    let slot = Slot::take(&state, principal.user_id)?;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        // A failed upgrade drops this callback, and the slot with it.
        .on_upgrade(move |socket| async move {
            connection(&slot.state, &principal, params.since, socket).await;
            drop(slot);
        }))
}

/// Whether a WebSocket upgrade's `Origin` may connect: any request without one (not a browser),
/// one listed in `ALLOWED_ORIGINS`, or, when that is unset, one naming the host the request was
/// sent to (Origin's host[:port] equal to the Host header).
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if !allowed.is_empty() {
        return allowed.contains(&origin);
    }
    let Some((_, host_port)) = origin.split_once("://") else {
        return false; // "null" (sandboxed pages, file:) or garbage
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| !host_port.contains('/') && host.trim().eq_ignore_ascii_case(host_port))
}

/// A reserved connection slot (instance and per-user limits), given back when dropped.
struct Slot {
    state: AppState,
    user: Uuid,
}

impl Slot {
    fn take(state: &AppState, user: Uuid) -> Result<Slot, ApiError> {
        let cfg = &state.config;
        match state.hub.try_admit(
            user,
            cfg.events.ws_max_connections,
            cfg.events.ws_max_per_user,
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
        state
            .metrics
            .ws_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Slot {
            state: state.clone(),
            user,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.hub.release(self.user);
        self.state
            .metrics
            .ws_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `{"type": kind, "at": now, "seq": seq}`: the text of `welcome` and `resync`.
fn notice(kind: &str, seq: i64) -> Message {
    Message::Text(
        json!({"type": kind, "at": chrono::Utc::now(), "seq": seq})
            .to_string()
            .into(),
    )
}

/// `fut` under [`SEND_TIMEOUT`]; the timer is armed only when it does not finish at once (the
/// common case: the socket has room), which saves a timer per event per connection.
async fn sent<F, E>(fut: F) -> bool
where
    F: Future<Output = Result<(), E>>,
{
    let mut fut = std::pin::pin!(fut);
    match futures::poll!(fut.as_mut()) {
        std::task::Poll::Ready(out) => out.is_ok(),
        std::task::Poll::Pending => {
            matches!(tokio::time::timeout(SEND_TIMEOUT, fut).await, Ok(Ok(())))
        }
    }
}

async fn connection(state: &AppState, p: &Principal, since: Option<i64>, mut socket: WebSocket) {
    if let Some((code, reason)) = serve(state, p, since, &mut socket).await {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, socket.send(Message::Close(Some(frame)))).await;
    }
}

/// The connection's life, until it should end with a close frame (the code and reason returned)
/// or without one (`None`: the socket failed, or the client's close was answered).
async fn serve(
    state: &AppState,
    p: &Principal,
    since: Option<i64>,
    socket: &mut WebSocket,
) -> Option<(u16, &'static str)> {
    let staff_side = p.role.is_staff_side();
    let mut shutdown = state.hub.shutdown_signal();
    // Subscribe before reading `last_seq`: every event above it comes through the feed, so none
    // falls between the welcome (and replay) and the live stream; the feed's events at or below
    // what was sent are dropped by `seq`.
    let mut feed = state.hub.subscribe(staff_side, p.customer_id);
    let mut sent_up_to = state.hub.last_seq();
    if !sent(socket.send(notice("welcome", sent_up_to))).await {
        return None;
    }
    if let Some(since) = since.filter(|s| *s < sent_up_to) {
        // Boxed, as is the session check below: a task's size is that of the largest future it
        // ever waits on, and every idle connection would otherwise carry room for these rare ones.
        let frames = Box::pin(replay(state, p, since, &mut sent_up_to)).await;
        for frame in frames {
            if !sent(socket.feed(frame)).await {
                return None;
            }
        }
        if !sent(socket.flush()).await {
            return None;
        }
    }
    if *shutdown.borrow_and_update() {
        return Some((1001, "server shutting down"));
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    loop {
        tokio::select! {
            // Events first: a wake-up for an event then polls nothing else. The client's frames
            // are read as soon as no event is waiting.
            biased;
            next = feed.recv() => {
                if !forward(state, next, &mut feed, socket, &mut sent_up_to).await {
                    return None;
                }
            }
            msg = socket.next() => match msg {
                // tungstenite queued the echo; the flush sends it.
                Some(Ok(Message::Close(_))) => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, socket.flush()).await;
                    return None;
                }
                // Likewise the pong.
                Some(Ok(Message::Ping(_))) => {
                    last_seen = Instant::now();
                    if !sent(socket.flush()).await {
                        return None;
                    }
                }
                Some(Ok(_)) => last_seen = Instant::now(),
                Some(Err(e)) => return breach(e),
                None => return None,
            },
            _ = ping.tick() => {
                // Signed out or deactivated since connecting: end the stream.
                if Box::pin(auth::still_valid(state, p)).await == Some(false) {
                    return Some((4401, "session ended"));
                }
                if last_seen.elapsed() > IDLE_LIMIT {
                    return Some((1001, "idle"));
                }
                if !sent(socket.send(Message::Ping(Default::default()))).await {
                    return None;
                }
            }
            _ = shutdown.changed() => return Some((1001, "server shutting down")),
        }
    }
}

/// Sends `next` and the events already waiting behind it (up to [`MAX_BATCH`]) with one flush.
/// `false`: the client is gone, or did not read for [`SEND_TIMEOUT`] (each step waits at most that
/// long, so a client that reads slowly but steadily stays).
async fn forward(
    state: &AppState,
    next: Next,
    feed: &mut Feed<'_>,
    socket: &mut WebSocket,
    sent_up_to: &mut i64,
) -> bool {
    let mut next = Some(next);
    let mut queued = 0;
    while let Some(item) = next.take() {
        let frame = match item {
            // At or below `sent_up_to`: covered by the welcome or the replay.
            Next::Event(ev) if ev.seq <= *sent_up_to => None,
            Next::Event(ev) => {
                *sent_up_to = ev.seq;
                Some(Message::Text(ev.frame.clone()))
            }
            Next::Lagged => {
                // Operators watch this: clients too slow for the event rate (`/metrics`).
                ::metrics::counter!("till_ws_resyncs_total").increment(1);
                *sent_up_to = (*sent_up_to).max(state.hub.last_seq());
                Some(notice("resync", *sent_up_to))
            }
        };
        if let Some(frame) = frame {
            if !sent(socket.feed(frame)).await {
                return false;
            }
            queued += 1;
        }
        if queued < MAX_BATCH {
            next = feed.try_recv();
        }
    }
    sent(socket.flush()).await
}

/// The frames a client reconnecting after `since` missed: the events it may see, or a `resync`
/// when there are too many (or they cannot be read). Advances `sent_up_to` past them.
async fn replay(state: &AppState, p: &Principal, since: i64, sent_up_to: &mut i64) -> Vec<Message> {
    match outbox::after(&state.db.write, since, MAX_REPLAY).await {
        Ok(rows) if rows.len() as i64 == MAX_REPLAY => vec![notice("resync", *sent_up_to)],
        Ok(rows) => {
            *sent_up_to = (*sent_up_to).max(rows.last().map_or(0, |r| r.seq));
            rows.iter()
                .map(Event::from_row)
                .filter(|ev| ev.visible_to(p.role.is_staff_side(), p.customer_id))
                .map(|ev| Message::Text(ev.frame))
                .collect()
        }
        Err(_) => vec![notice("resync", *sent_up_to)],
    }
}

/// The close code for what the client sent that broke the protocol; `None` when the connection
/// itself failed (nothing can be sent).
fn breach(e: axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::{Error as WsError, ProtocolError};
    match e.into_inner().downcast::<WsError>().map(|e| *e) {
        Ok(WsError::Capacity(_)) => Some((1009, "message too big")),
        Ok(WsError::Utf8(_)) => Some((1007, "invalid UTF-8")),
        // The client dropped the connection without a close frame: nobody to tell.
        Ok(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => None,
        Ok(WsError::Protocol(_)) => Some((1002, "protocol error")),
        _ => None,
    }
}

#[cfg(test)]
mod origin_tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn origin_must_be_the_own_host_or_listed() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(&h(&[("host", "shop.test:8080")]), &none));
        assert!(origin_allowed(
            &h(&[
                ("host", "shop.test:8080"),
                ("origin", "http://Shop.test:8080")
            ]),
            &none
        ));
        for bad in [
            "http://evil.test",
            "http://shop.test",
            "null",
            "http://shop.test:8080.evil",
        ] {
            assert!(
                !origin_allowed(&h(&[("host", "shop.test:8080"), ("origin", bad)]), &none),
                "{bad}"
            );
        }
        let listed = vec!["https://pos.example.com".to_string()];
        assert!(origin_allowed(
            &h(&[
                ("host", "internal:8080"),
                ("origin", "https://pos.example.com")
            ]),
            &listed
        ));
        assert!(!origin_allowed(
            &h(&[
                ("host", "internal:8080"),
                ("origin", "http://internal:8080")
            ]),
            &listed
        ));
    }
}
