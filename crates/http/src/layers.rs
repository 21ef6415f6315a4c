//! Cross-cutting middleware, outermost first: the edge (request id, log line, metrics, error
//! envelope, security headers), compression, panic → 500, the guard (body limit → 413, timeout
//! → 503); and on `/api/v1` routes, after routing, the API gate (schema guard, rate limit,
//! control characters in the query, route tag).

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use tokio::sync::SemaphorePermit;
use tracing::Instrument;

use crate::error::ApiError;
use crate::request_id;
use crate::state::AppState;

/// The outer edge of every request: the request id, one log line, the request metrics, the
/// error envelope (any error that is not already our JSON shape) and the security headers.
///
/// A tower service written out rather than `axum::middleware::from_fn`: on every request
/// `from_fn` clones the whole stack beneath it, boxes that clone and boxes its future, and
/// profiling the liveness probe (perf, wrk at 64 connections) showed those clones, boxes and
/// moves costing more than the work of the layers themselves. This one calls the stack beneath
/// it in place and boxes one future. The concerns stay separate functions.
pub type Edge<S> = WithState<EdgeKind, S>;
/// [`Edge`] around a service.
pub type EdgeLayer = WithStateLayer<EdgeKind>;
#[derive(Clone, Copy)]
pub enum EdgeKind {}

/// One of the outer layers ([`Edge`], [`Guard`]): the server state and the service beneath;
/// `K` says which.
pub struct WithState<K, S> {
    state: AppState,
    inner: S,
    kind: PhantomData<fn() -> K>,
}

impl<K, S: Clone> Clone for WithState<K, S> {
    fn clone(&self) -> Self {
        WithState {
            state: self.state.clone(),
            inner: self.inner.clone(),
            kind: PhantomData,
        }
    }
}

/// Builds a [`WithState`] around a service.
pub struct WithStateLayer<K>(AppState, PhantomData<fn() -> K>);

impl<K> WithStateLayer<K> {
    pub fn new(state: AppState) -> Self {
        WithStateLayer(state, PhantomData)
    }
}

impl<K> Clone for WithStateLayer<K> {
    fn clone(&self) -> Self {
        WithStateLayer(self.0.clone(), PhantomData)
    }
}

impl<K, S> tower::Layer<S> for WithStateLayer<K> {
    type Service = WithState<K, S>;
    fn layer(&self, inner: S) -> WithState<K, S> {
        WithState {
            state: self.0.clone(),
            inner,
            kind: PhantomData,
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The response of a service that cannot fail.
async fn answered(answer: impl Future<Output = Result<Response, Infallible>>) -> Response {
    match answer.await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// What a [`WithState`] does with a request.
pub trait Handles<S>: Sized {
    fn handle(state: &AppState, inner: &mut S, req: Request) -> Answer;
}

impl<K, S> tower::Service<Request> for WithState<K, S>
where
    K: Handles<S>,
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Answer {
        K::handle(&self.state, &mut self.inner, req)
    }
}

impl<S> Handles<S> for EdgeKind
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    fn handle(state: &AppState, inner: &mut S, req: Request) -> Answer {
        let state = state.clone();
        let id = request_id::accept_or_new(req.headers().get(request_id::HEADER));
        let method = req.method().clone();
        let span =
            tracing::info_span!("request", request_id = %id, %method, path = %req.uri().path());
        // The liveness probe is answered here, with everything the edge adds (request id, log
        // line, metrics, security headers): the layers beneath (compression, panic guard, body
        // limit and timeout, routing) have nothing to do for a fixed answer, and skipping them
        // raised the probe's throughput by a fifth to a third (wrk at 64 connections; see
        // `loadtests/README.md`). Nothing beneath can hold it up either, which suits a probe
        // that asks only whether the process serves.
        if method == axum::http::Method::GET && req.uri().path() == crate::health::LIVENESS_PATH {
            let resp = crate::health::liveness_answer();
            return Box::pin(async move {
                Ok(edge(state, id, method, span, std::future::ready(resp)).await)
            });
        }
        let answer = inner.call(req);
        Box::pin(async move { Ok(edge(state, id, method, span, answered(answer)).await) })
    }
}

async fn edge(
    state: AppState,
    id: String,
    method: axum::http::Method,
    span: tracing::Span,
    answer: impl Future<Output = Response>,
) -> Response {
    let served = state.metrics.begin();
    let header_id = HeaderValue::from_str(&id).ok();
    // A span nobody listens to (the request log is off below INFO) is not entered on every
    // poll of the whole request.
    let resp = if span.is_disabled() {
        request_id::scope(id, answer).await
    } else {
        request_id::scope(id, answer.instrument(span.clone())).await
    };
    let mut resp = envelope(resp);
    // Room for the headers added below and by the rate limiter at once, instead of growing
    // the map one rehash at a time.
    resp.headers_mut().reserve(8);
    security_headers(&state, resp.headers_mut());
    let status = resp.status().as_u16();
    let route = resp.extensions().get::<RouteTag>().map(RouteTag::as_str);
    let elapsed = served.finish(&method, route, status);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "served"
        );
    });
    if let Some(v) = header_id {
        resp.headers_mut().insert(request_id::HEADER, v);
    }
    resp
}

/// The route template (`/api/v1/orders/{id}`) a response was produced by; set by [`TagRoute`]
/// and the API gate. (`MatchedPath` holds the router's shared copy of the template: cloning it
/// allocates nothing.)
#[derive(Clone)]
pub enum RouteTag {
    Matched(axum::extract::MatchedPath),
    /// A route answered by the edge itself.
    Fixed(&'static str),
}

impl RouteTag {
    pub fn as_str(&self) -> &str {
        match self {
            RouteTag::Matched(m) => m.as_str(),
            RouteTag::Fixed(p) => p,
        }
    }
}

/// Route layer: tells the outer [`Edge`] which route template answered, so metrics are
/// labelled by template (bounded) and never by raw path (one series per order id). A service
/// rather than `from_fn`, for the reason given at [`Edge`].
#[derive(Clone, Copy)]
pub struct TagRouteLayer;

impl<S> tower::Layer<S> for TagRouteLayer {
    type Service = TagRoute<S>;
    fn layer(&self, inner: S) -> TagRoute<S> {
        TagRoute(inner)
    }
}

#[derive(Clone)]
pub struct TagRoute<S>(S);

impl<S> tower::Service<Request> for TagRoute<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Answer {
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|m| RouteTag::Matched(m.clone()));
        let answer = self.0.call(req);
        Box::pin(async move {
            let mut resp = answered(answer).await;
            if let Some(r) = route {
                resp.extensions_mut().insert(r);
            }
            Ok(resp)
        })
    }
}

/// Any error response that is not already our JSON envelope (axum's 405, the body limit's 413,
/// a static file's 404…) is rewritten into it, so clients see one error shape everywhere.
fn envelope(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, _) = resp.into_parts();
    let mut fresh = ApiError::from_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            fresh.headers_mut().insert(name, v.clone());
        }
    }
    fresh
}

const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");
const REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");
/// The policy of the pages a browser renders (the till's and the shop's HTML, the API docs) and
/// of their scripts (a worker runs under its script's policy): scripts, styles, images and the
/// live feed from this origin only.
pub const DOCUMENT_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";
/// The policy of data (JSON, CSV, plain text, images): never a page that runs anything, so it
/// may load nothing and be framed by nobody, as OWASP's REST guidance has it for APIs. An SVG
/// opened on its own runs no script under it. Under a quarter of the document policy's length,
/// on every API answer.
pub const DATA_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers every response carries.
fn security_headers(state: &AppState, h: &mut HeaderMap) {
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A handler may set its own framing policy (the printable receipt is framed by the till).
    h.entry(X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = if is_data(h) { DATA_CSP } else { DOCUMENT_CSP };
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
    }
    if state.config.auth.cookie_secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// Whether a response is data that no browser runs as a page or a worker. Everything else keeps
/// the document policy: HTML; scripts, because a worker's script answer sets the worker's own
/// policy (the till's offline service worker fetches under it); and answers without a content
/// type, such as a 304 for a page, whose headers browsers put on the cached page.
fn is_data(h: &HeaderMap) -> bool {
    let Some(ct) = h.get(header::CONTENT_TYPE) else {
        return false;
    };
    let ct = ct.as_bytes();
    let essence = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let is = |t: &[u8]| essence.eq_ignore_ascii_case(t);
    let starts = |p: &[u8]| {
        essence
            .get(..p.len())
            .is_some_and(|c| c.eq_ignore_ascii_case(p))
    };
    is(b"application/json")
        || (starts(b"application/") && essence.ends_with(b"+json"))
        || is(b"text/csv")
        || is(b"text/plain")
        || starts(b"image/")
}

const IMPORT_PATH: &str = "/api/v1/products/import";
/// A CSV import may carry 64 MiB over a slow link and write 100,000 rows: it gets this long
/// (or `REQUEST_TIMEOUT_SECONDS`, if longer) instead. Its transaction rolls back if it runs out.
const IMPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// `catch_panic` handler: a bug answers 500 in the error shape; the panic text is logged only.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    ApiError::internal(format!("panic: {msg}")).into_response()
}

/// `/media/` files are named by their content's hash, so a name always means the same bytes:
/// browsers and proxies may keep them for a year without asking again. Errors (a missing
/// file) are not cached.
pub async fn immutable_cache(mut resp: Response) -> Response {
    if resp.status().is_success() {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    resp
}

/// The largest body a request may send: `MAX_IMAGE_BYTES` for an image upload,
/// `MAX_IMPORT_BYTES` for a CSV import, `MAX_BODY_BYTES` for everything else.
pub fn body_limit_for(state: &AppState, method: &axum::http::Method, path: &str) -> usize {
    if method == axum::http::Method::POST {
        if let Some(rest) = path.strip_prefix("/api/v1/products/") {
            if path == IMPORT_PATH {
                return state.config.media.max_import_bytes;
            }
            if rest
                .strip_suffix("/images")
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
            {
                return state.config.media.max_image_bytes;
            }
        }
    }
    state.config.http.max_body_bytes
}

/// The request's limits, in one layer (a service, for the reason given at [`Edge`]): the body
/// limit — a declared `Content-Length` over the route's limit is refused at once (413), and the
/// body actually read is capped at that limit, so a chunked upload cannot exceed it either
/// (extractors then answer 413 when they hit the cap) — and the time limit: a request that runs
/// past `REQUEST_TIMEOUT_SECONDS` is abandoned with 503 (a CSV import: past [`IMPORT_TIMEOUT`]).
pub type Guard<S> = WithState<GuardKind, S>;
/// [`Guard`] around a service.
pub type GuardLayer = WithStateLayer<GuardKind>;
#[derive(Clone, Copy)]
pub enum GuardKind {}

impl<S> Handles<S> for GuardKind
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    fn handle(state: &AppState, inner: &mut S, req: Request) -> Answer {
        let limit = body_limit_for(state, req.method(), req.uri().path());
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            let refused = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
            return Box::pin(std::future::ready(Ok(refused)));
        }
        // WebSocket upgrades live for hours; the timeout applies to the handshake only, which
        // the handler answers at once, so no exception is needed here.
        let time_limit =
            if req.method() == axum::http::Method::POST && req.uri().path() == IMPORT_PATH {
                state.config.http.request_timeout.max(IMPORT_TIMEOUT)
            } else {
                state.config.http.request_timeout
            };
        let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
        let answer = inner.call(req);
        Box::pin(async move {
            Ok(
                match tokio::time::timeout(time_limit, answered(answer)).await {
                    Ok(r) => r,
                    Err(_) => ApiError::unavailable("The request took too long; try again.")
                        .into_response(),
                },
            )
        })
    }
}

/// While migrations are behind, the API refuses work rather than run against an old schema.
pub async fn schema_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match schema_refusal(&state).await {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

async fn schema_refusal(state: &AppState) -> Option<Response> {
    if !state.is_schema_ready() && !state.refresh_schema_ready().await {
        return Some(
            ApiError::unavailable("The database schema is being upgraded; try again shortly.")
                .into_response(),
        );
    }
    None
}

/// A turn to work on an API request (`API_MAX_IN_FLIGHT`, by default four per pooled database
/// connection), waited for in arrival order (tokio's semaphore is fair).
///
/// Why: under a burst (measured: 1,000 connections on three instances of eight pooled
/// connections each), every request went straight to the pool's queue, where a wait beyond
/// `DATABASE_ACQUIRE_TIMEOUT_MS` answers 503, and about 3 % of the requests got one. Waiting here
/// instead bounds the pool's queue to a few requests per connection, so a burst is only served
/// later. A wait here stays patient while the instance is answering (the database is busy, not
/// gone), up to the guard's `REQUEST_TIMEOUT_SECONDS`; once nothing but 503s came back for an
/// acquire timeout (PostgreSQL is down), it answers 503 with `Retry-After` itself, so an outage
/// is still told within about that timeout. Health probes and static files are not API routes
/// and never wait here.
async fn api_turn(state: &AppState) -> Result<Option<SemaphorePermit<'_>>, Response> {
    if let Ok(turn) = state.api_turns.try_acquire() {
        return Ok(Some(turn));
    }
    let _waiting = state.metrics.waiting();
    let patience = state.config.database.acquire_timeout;
    let turn = state.api_turns.acquire();
    tokio::pin!(turn);
    loop {
        match tokio::time::timeout(patience, turn.as_mut()).await {
            // The semaphore is never closed, so this is always Ok; were it closed, the request
            // would simply go on without a turn.
            Ok(turn) => return Ok(turn.ok()),
            Err(_) if state.answered_within(patience) => continue,
            Err(_) => {
                return Err(ApiError::unavailable(
                    "The database is not answering; try again shortly.",
                )
                .into_response())
            }
        }
    }
}

/// Every `/api/v1` route's gate, in this order: a turn ([`api_turn`]), the schema guard, the rate limit (which resolves
/// the credentials once), the control-character check on the query, then the route; the answer
/// is tagged with the route template for the metrics. One middleware for the four (see
/// [`edge`]); it runs after routing, so the template is known here.
pub async fn api_gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| RouteTag::Matched(m.clone()));
    let mut resp = match api_turn(&state).await {
        Err(refused) => refused,
        Ok(_turn) => match schema_refusal(&state).await {
            Some(refused) => refused,
            None => {
                rate_limited(&state, req, |req| async move {
                    if let Err(refused) = crate::extract::check_query_text(&req) {
                        return refused;
                    }
                    next.run(req).await
                })
                .await
            }
        },
    };
    if resp.status() != StatusCode::SERVICE_UNAVAILABLE {
        state.note_answered();
    }
    if let Some(r) = route {
        resp.extensions_mut().insert(r);
    }
    resp
}

/// The client's address: the socket peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` hop that is not itself trusted. A header from an untrusted peer is ignored.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

pub fn peer_of(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The resolved client address, stored in request extensions by the rate limiter.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What a per-IP bucket counts: the address itself for IPv4, its /64 for IPv6 (one subscriber
/// usually holds a whole /64, so per-address buckets would hand one client 2^64 of them). An
/// IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn ip_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let net = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(net))
            }
        },
    }
}

/// A rate-limit bucket's key: `rl:{scope}:` and a keyed hash of what it counts, so no raw
/// email or other client-chosen text becomes a Redis key, every key has the same short length,
/// and the keys do not reveal which emails were tried.
pub fn bucket_key(state: &AppState, scope: &str, counted: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"till-rate-limit\0")
        .chain_update(state.config.jwt_secret_bytes())
        .chain_update(b"\0")
        .chain_update(counted.as_bytes())
        .finalize();
    format!("rl:{scope}:{}", hex::encode(&digest[..16]))
}

/// Resolves credentials once (handlers reuse the result), then counts the request against the
/// caller's shared bucket: per user when signed in, per client IP (IPv6: per /64) otherwise.
/// While Redis is down each instance counts on its own; limits never switch off. `run` serves
/// a request within its limit.
async fn rate_limited<F, Fut>(state: &AppState, mut req: Request, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    use crate::auth::AuthOutcome;
    use crate::extract::Credentials;

    let ip = client_ip(
        peer_of(&req),
        req.headers(),
        &state.config.http.trusted_proxies,
    );
    req.extensions_mut().insert(ClientIp(ip));
    let outcome = crate::auth::resolve(state, req.headers()).await;
    let (key, limit) = match &outcome {
        AuthOutcome::Authenticated(p) => (
            format!("rl:u:{}", p.user_id),
            state.config.limits.user_per_min,
        ),
        _ => (
            bucket_key(state, "a", &ip_group(ip)),
            state.config.limits.anon_per_min,
        ),
    };
    req.extensions_mut().insert(Credentials(outcome));
    let c = match state.store.count_hit(&key, RATE_WINDOW, limit).await {
        Ok(c) => c,
        Err(e) => {
            // Not even the per-instance table could count this client: refuse rather than
            // serve unthrottled.
            tracing::warn!(error = %e, "rate limiter cannot count");
            return ApiError::unavailable("Too busy to serve this request; try again shortly.")
                .into_response();
        }
    };
    let mut resp = if c.count > limit {
        ApiError::rate_limited(c.reset_secs).into_response()
    } else {
        run(req).await
    };
    set_rate_headers(resp.headers_mut(), limit, c.count, c.reset_secs);
    resp
}

pub fn set_rate_headers(h: &mut HeaderMap, limit: u64, count: u64, reset: u64) {
    h.insert("ratelimit-limit", HeaderValue::from(limit));
    h.insert(
        "ratelimit-remaining",
        HeaderValue::from(limit.saturating_sub(count)),
    );
    h.insert("ratelimit-reset", HeaderValue::from(reset));
}

/// Unknown route under the API.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.7"),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn data_gets_the_strict_policy_and_pages_scripts_and_bodiless_answers_the_document_one() {
        let policy = |ct: Option<&'static str>| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            if is_data(&h) {
                DATA_CSP
            } else {
                DOCUMENT_CSP
            }
        };
        for page in [
            Some("text/html"),
            Some("text/html; charset=utf-8"),
            Some("application/xhtml+xml"),
            Some("text/javascript"),
            Some("application/javascript; charset=utf-8"),
            Some("text/css"),
            Some(""),
            None,
        ] {
            assert_eq!(policy(page), DOCUMENT_CSP, "{page:?}");
        }
        for data in [
            "application/json",
            "APPLICATION/JSON; charset=utf-8",
            "application/problem+json",
            "text/csv; charset=utf-8",
            "text/plain; version=0.0.4",
            "image/png",
            "image/svg+xml",
        ] {
            assert_eq!(policy(Some(data)), DATA_CSP, "{data}");
        }
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let g = |s: &str| ip_group(s.parse().unwrap());
        assert_eq!(g("2001:db8:1:2:aaaa::1"), g("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(g("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"));
        assert_eq!(g("203.0.113.7"), "203.0.113.7");
        assert_ne!(g("203.0.113.7"), g("203.0.113.8"));
        assert_eq!(g("::ffff:203.0.113.7"), "203.0.113.7");
    }
}
