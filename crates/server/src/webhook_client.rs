//! The HTTP client webhook deliveries go out with: hyper-util's pooled HTTP/1.1 client over TCP
//! or TLS (rustls with ring and the webpki roots, as reqwest sets it up), keep-alive
//! connections reused per endpoint, one total timeout per attempt (connecting, sending and
//! reading the answer).
//!
//! hyper's client directly rather than reqwest, which wraps this same client: in the webhook
//! benchmark (`loadtests/checkout.sh`, `BASELINE=webhooks`) the worker spent about 55 µs of CPU
//! per delivery, more than twice what the receiving server spent on it, and reqwest's own layers
//! were a large share: the endpoint's URL parsed and IDNA-mapped on every request, its
//! connector, redirect and timeout plumbing, a boxed future per request. Here a URL is parsed
//! once per batch ([`Target`]), and the request is the event's prepared bytes and headers.
//!
//! Targets are re-checked at every connection: in production, a name that resolves to a
//! loopback, private, link-local or metadata address is refused by the resolver itself, so the
//! check and the connection use the same addresses; an address written in the URL (which never
//! reaches the resolver) is checked when the URL is parsed ([`Target::parse`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, USER_AGENT};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use till_app::webhooks::public_ip;

/// How much of an answer is read (the rest is dropped) and how much of it is kept in the log.
const READ_CAP: usize = 64 * 1024;
const EXCERPT_CHARS: usize = 500;

const REFUSED_TARGET: &str = "the host resolves to a non-public address";

const AGENT: &str = concat!("Till-Webhooks/", env!("CARGO_PKG_VERSION"));

pub struct WebhookClient {
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>,
    timeout: Duration,
    public_only: bool,
}

/// An endpoint's URL, parsed once for a batch of deliveries.
pub struct Target {
    uri: Option<Uri>,
    literal_ok: bool,
}

impl Target {
    /// Parsed as the endpoint was validated (the `url` crate: IDNA names become their ASCII
    /// form), then as the request's URI.
    pub fn parse(url: &str) -> Target {
        let Ok(u) = url::Url::parse(url) else {
            return Target {
                uri: None,
                literal_ok: false,
            };
        };
        // The resolver guards names; an address written in the URL never reaches it.
        let literal_ok = match u.host() {
            Some(url::Host::Ipv4(ip)) => public_ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => public_ip(ip.into()),
            Some(url::Host::Domain(_)) => true,
            None => false,
        };
        Target {
            uri: u.as_str().parse().ok(),
            literal_ok,
        }
    }
}

/// The receiver's answer: its status and the start of its body.
pub struct Answer {
    pub status: u16,
    pub excerpt: String,
}

impl WebhookClient {
    /// `public_only`: production's rule, no delivery to a non-public address.
    pub fn new(timeout: Duration, pool_per_host: usize, public_only: bool) -> WebhookClient {
        let mut http = HttpConnector::new_with_resolver(Resolver { public_only });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            // ring's default provider supports the default protocol versions.
            .expect("ring supports TLS 1.2 and 1.3")
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // A redirect could lead anywhere, past the target check: this client never follows one
        // (hyper has no redirect support), and a 3xx is retried as the receiver's error.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool_per_host)
            .build(https);
        WebhookClient {
            client,
            timeout,
            public_only,
        }
    }

    /// POSTs `body` with `headers` (besides the user agent) and reads at most 64 KiB of
    /// the answer, all within the timeout. The error is the text kept in the delivery log.
    pub async fn post(
        &self,
        target: &Target,
        headers: impl IntoIterator<Item = (http::HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Answer, String> {
        let Some(uri) = &target.uri else {
            return Err("the request failed: the URL is not valid".into());
        };
        if self.public_only && !target.literal_ok {
            return Err(format!("could not connect: {REFUSED_TARGET}"));
        }
        let mut req = Request::post(uri.clone());
        if let Some(h) = req.headers_mut() {
            h.insert(USER_AGENT, HeaderValue::from_static(AGENT));
            h.extend(headers);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|_| "the request failed")?;
        let sent = async {
            let resp = self.client.request(req).await.map_err(|e| describe(&e))?;
            let status = resp.status().as_u16();
            let excerpt = read_capped(resp.into_body()).await;
            Ok(Answer { status, excerpt })
        };
        match tokio::time::timeout(self.timeout, sent).await {
            Ok(answer) => answer,
            Err(_) => Err("timed out".into()),
        }
    }
}

/// Reads at most [`READ_CAP`] bytes of the answer and keeps an excerpt as text (no NULs:
/// PostgreSQL text cannot hold them).
async fn read_capped(mut body: hyper::body::Incoming) -> String {
    let mut buf = Vec::new();
    while buf.len() < READ_CAP {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf)
        .chars()
        .filter(|c| *c != '\0')
        .take(EXCERPT_CHARS)
        .collect()
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    if !e.is_connect() {
        return "the request failed".into();
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.to_string().contains(REFUSED_TARGET) {
            return format!("could not connect: {REFUSED_TARGET}");
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return "timed out".into();
            }
        }
        src = s.source();
    }
    "could not connect".into()
}

/// Names to addresses; in production a name resolving to any non-public address is refused.
#[derive(Clone)]
struct Resolver {
    public_only: bool,
}

type Resolving = Pin<
    Box<
        dyn Future<
                Output = Result<
                    std::vec::IntoIter<SocketAddr>,
                    Box<dyn std::error::Error + Send + Sync>,
                >,
            > + Send,
    >,
>;

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let public_only = self.public_only;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if public_only && (addrs.is_empty() || addrs.iter().any(|a| !public_ip(a.ip()))) {
                return Err(REFUSED_TARGET.into());
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_in_the_url_is_checked_there() {
        assert!(!Target::parse("https://127.0.0.1/hook").literal_ok);
        assert!(!Target::parse("https://[::1]/hook").literal_ok);
        assert!(!Target::parse("https://169.254.169.254/latest").literal_ok);
        assert!(Target::parse("https://93.184.216.34/hook").literal_ok);
        assert!(Target::parse("https://hooks.example.com/hook").literal_ok);
        assert!(Target::parse("not a url").uri.is_none());
    }
}
