//! `GET /api/v1/ws`: authenticated before the upgrade (cookie, `Authorization`, or
//! `?access_token=`), limited per instance and per user, pinged every 30 s, closed with a
//! close frame on shutdown. A client that falls behind is told to resync instead of being
//! silently dropped; `?since=<seq>` replays what a reconnecting client missed.
//!
//! The handshake is answered here and the socket taken back from hyper after it: events are
//! written to it by the hub's fan-out threads (see `link`), and this connection's task only
//! reads the client's frames, pings, and finishes writes the socket had no room for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use till_db::outbox;
use tokio::net::TcpStream;

use super::link::{self, Incoming, Link};
use super::Event;
use crate::auth::{self, session, AuthOutcome, Principal};
use crate::error::ApiError;
use crate::extract::{Credentials, Query};
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(30);
/// No pong for this long: the peer is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// Replay at most this many missed events; beyond that the client must reload.
const MAX_REPLAY: i64 = 1000;
/// Bytes read at a time (on the stack): clients only send pongs and close frames.
const READ_CHUNK: usize = 1024;

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
    let not_upgrade = || ApiError::bad_request("Expected a WebSocket upgrade request.");
    let accept = accept_key(&parts.method, &parts.headers).ok_or_else(not_upgrade)?;
    let on_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(not_upgrade)?;
    let cfg = &state.config;
    match state.hub.try_admit(
        principal.user_id,
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
    let user = principal.user_id;
    state
        .metrics
        .ws_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tokio::spawn(async move {
        match on_upgrade.await.map(|u| u.downcast::<TokioIo<TcpStream>>()) {
            Ok(Ok(up)) => {
                let link = Arc::new(Link::new(up.io.into_inner()));
                connection(
                    &state,
                    &principal,
                    params.since,
                    &link,
                    up.read_buf.to_vec(),
                )
                .await;
            }
            Ok(Err(_)) => {
                tracing::error!("WebSocket upgrade on a connection not served by till_http::serve")
            }
            Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
        }
        state.hub.release(user);
        state
            .metrics
            .ws_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(res)
}

/// RFC 6455 §4.2.1: a GET with `Connection: upgrade`, `Upgrade: websocket`, version 13 and a
/// key; the answer's `Sec-WebSocket-Accept` is derived from the key.
fn accept_key(method: &Method, headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let version_13 =
        headers.get(header::SEC_WEBSOCKET_VERSION) == Some(&HeaderValue::from_static("13"));
    if method != Method::GET
        || !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
        || !version_13
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes())).ok()
}

async fn connection(
    state: &AppState,
    p: &Principal,
    since: Option<i64>,
    link: &Arc<Link>,
    mut read: Vec<u8>,
) {
    let staff_side = p.role.is_staff_side();
    // Join before reading `last_seq`: live events from here on are held by the link until the
    // welcome and any replay are out, then follow them (see `Link::release`).
    let _member = state.hub.join(link, staff_side, p.customer_id);
    let mut sent_up_to = state.hub.last_seq();
    link.send(&link::text_frame(&link::notice("welcome", sent_up_to)));
    if let Some(since) = since.filter(|s| *s < sent_up_to) {
        // Boxed, as is the session check below: a task's size is that of the largest future it
        // ever waits on, and every idle connection would otherwise carry room for these rare ones.
        match Box::pin(outbox::after(&state.db.write, since, MAX_REPLAY)).await {
            Ok(rows) if rows.len() as i64 == MAX_REPLAY => resync(link, sent_up_to),
            Ok(rows) => {
                for ev in rows.iter().map(Event::from_row) {
                    if ev.visible_to(staff_side, p.customer_id) {
                        link.send(ev.wire());
                    }
                }
                sent_up_to = sent_up_to.max(rows.last().map_or(0, |r| r.seq));
            }
            Err(_) => resync(link, sent_up_to),
        }
    }
    link.release(sent_up_to);
    if let Ok((code, reason)) = serve(state, p, link, &mut read).await {
        link.send(&link::close_frame(code, reason));
        // Give the close frame a moment to leave.
        let _ = tokio::time::timeout(Duration::from_secs(2), link.flush()).await;
    }
}

/// Appends what the socket has to `read`. The buffer is on the stack and `read` only holds a
/// frame that is not whole yet, so an idle connection keeps no read buffer.
fn read_some(link: &Link, read: &mut Vec<u8>) -> Result<(), Gone> {
    let mut chunk = [0u8; READ_CHUNK];
    match link.tcp().try_read(&mut chunk) {
        Ok(0) => Err(Gone),
        Ok(n) => {
            read.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(_) => Err(Gone),
    }
}

fn resync(link: &Link, seq: i64) {
    link.send(&link::text_frame(&link::notice("resync", seq)));
}

/// The socket failed or the client went away: nothing more can be sent.
struct Gone;

/// The connection's life after the welcome, until it should end with a close frame (the code
/// and reason returned) or the socket is [`Gone`].
async fn serve(
    state: &AppState,
    p: &Principal,
    link: &Link,
    read: &mut Vec<u8>,
) -> Result<(u16, &'static str), Gone> {
    let mut shutdown = state.hub.shutdown_signal();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_seen = Instant::now();
    loop {
        // Frames already read (hyper may hand some over with the socket).
        loop {
            match link::next_frame(read) {
                Ok(None) => {
                    if read.is_empty() {
                        *read = Vec::new();
                    }
                    break;
                }
                Ok(Some(Incoming::Activity)) => last_seen = Instant::now(),
                Ok(Some(Incoming::Ping(payload))) => {
                    last_seen = Instant::now();
                    link.send(&link::pong_frame(&payload));
                }
                Ok(Some(Incoming::Close(code))) => return Ok((code.unwrap_or(1000), "")),
                Err(code) => return Ok((code, "protocol error")),
            }
        }
        tokio::select! {
            // Writes the socket had no room for come first: they hold up this client's events.
            biased;
            () = link.woken() => link.flush().await.map_err(|_| Gone)?,
            ready = link.tcp().readable() => {
                ready.map_err(|_| Gone)?;
                read_some(link, read)?;
            }
            _ = ping.tick() => {
                // Signed out or deactivated since connecting: end the stream.
                if matches!(Box::pin(session::get(&state.store, &p.session_id)).await, Ok(None)) {
                    return Ok((4401, "session ended"));
                }
                if last_seen.elapsed() > IDLE_LIMIT {
                    return Ok((1001, "idle"));
                }
                link.send(&link::ping_frame());
            }
            _ = shutdown.changed() => return Ok((1001, "server shutting down")),
        }
    }
}
