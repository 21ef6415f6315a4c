//! One keep-alive HTTP/1.1 connection per worker, on hyper's connection API.
//!
//! Why not a reqwest client per worker: its pool checks out an idle connection and, when none is
//! back yet (the previous answer's connection returns to the pool a moment after its body was
//! read), opens a second one at the same time; back-to-back requests then leave most workers with
//! two connections, and "1,000 connections" would really be about 2,000. Here a worker has exactly
//! one, and opens a new one only when the server closed it (nginx does after `keepalive_requests`,
//! announcing it with `Connection: close`) or after a failure.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::stats::Failure;

pub struct Conn {
    addr: SocketAddr,
    /// `host:port`, for the Host header.
    host: String,
    gzip: bool,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// One request: `path` with its query, the caller's token, a JSON body; `what` names it in
/// error reports.
pub struct Req<'a> {
    pub method: Method,
    pub path: String,
    pub bearer: Option<&'a str>,
    pub idempotency_key: Option<String>,
    pub json: Option<Value>,
    pub what: &'static str,
}

impl Req<'_> {
    pub fn get(path: String, what: &'static str) -> Req<'static> {
        Req {
            method: Method::GET,
            path,
            bearer: None,
            idempotency_key: None,
            json: None,
            what,
        }
    }
}

/// An answer, read to the end.
pub struct Answer {
    pub status: StatusCode,
    gzipped: bool,
    body: Bytes,
}

impl Answer {
    /// The body as JSON, unzipped first when the server compressed it.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        if self.gzipped {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut raw)
                .map_err(|e| format!("gunzip: {e}"))?;
            serde_json::from_slice(&raw).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(&self.body).map_err(|e| e.to_string())
        }
    }
}

fn transport(what: &str, kind: String) -> Failure {
    Failure {
        detail: format!("{what}: {kind}"),
        kind,
    }
}

/// The innermost cause of an error, which says what happened ("connection reset by peer").
fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut src = e;
    while let Some(s) = src.source() {
        src = s;
    }
    src.to_string()
}

impl Conn {
    /// `base` is `http://IP:PORT` (no name resolution: the benchmark addresses are literal).
    pub fn new(base: &str, gzip: bool, timeout: Duration) -> Result<Conn, String> {
        let host = base
            .strip_prefix("http://")
            .ok_or_else(|| format!("{base}: only http:// is supported"))?
            .trim_end_matches('/')
            .to_owned();
        let addr = host
            .parse()
            .map_err(|_| format!("{base}: want http://IP:PORT"))?;
        Ok(Conn {
            addr,
            host,
            gzip,
            timeout,
            sender: None,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {}", root(&e)))?;
        tokio::spawn(async move {
            // Ends when the connection closes; its errors surface on the request side.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole answer; a non-2xx answer is a `Failure` named by
    /// status and Till's error code. `connects` counts the connections opened.
    pub async fn request(&mut self, r: Req<'_>, connects: &AtomicU64) -> Result<Answer, Failure> {
        let what = r.what;
        match tokio::time::timeout(self.timeout, self.exchange(r, connects)).await {
            Ok(res) => res,
            Err(_) => {
                // The connection's state is unknown: start afresh.
                self.sender = None;
                Err(transport(what, "transport: timeout".to_owned()))
            }
        }
    }

    async fn exchange(&mut self, r: Req<'_>, connects: &AtomicU64) -> Result<Answer, Failure> {
        let what = r.what;
        let usable = match &mut self.sender {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.sender = None;
            let s = self.connect().await.map_err(|e| transport(what, e))?;
            connects.fetch_add(1, Ordering::Relaxed);
            self.sender = Some(s);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let mut req = Request::builder()
            .method(r.method)
            .uri(r.path)
            .header("host", &self.host);
        if self.gzip {
            req = req.header("accept-encoding", "gzip");
        }
        if let Some(t) = r.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(k) = r.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let body = match r.json {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(&v).expect("json body")))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| transport(what, format!("request: {e}")))?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(transport(what, format!("transport: {}", root(&e))));
            }
        };
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let rid = header("x-request-id").unwrap_or_else(|| "-".to_owned());
        let gzipped = header("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                let kind = format!("transport: {}", root(&e));
                return Err(Failure {
                    detail: format!("{what}: {kind} (reading the body; request id {rid})"),
                    kind,
                });
            }
        };
        let answer = Answer {
            status,
            gzipped,
            body,
        };
        if !status.is_success() {
            let err: Value = answer.json().unwrap_or(Value::Null);
            let code = err["error"]["code"].as_str().unwrap_or("-");
            let message = err["error"]["message"].as_str().unwrap_or("");
            let kind = format!("{} {code}", status.as_u16());
            return Err(Failure {
                detail: format!("{what}: {kind} (request id {rid}): {message}"),
                kind,
            });
        }
        Ok(answer)
    }
}
