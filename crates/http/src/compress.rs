//! Response compression (gzip, brotli) for the clients that ask for it.
//!
//! Hand-built around tower-http's `Compression`, which does all the compressing: a request that
//! sends no `Accept-Encoding` (health probes, most API clients and load balancers) skips it.
//! tower-http wraps every response body in its `CompressionBody` (an enum holding any encoder,
//! a few hundred bytes) even when it sends it as is; profiling the liveness probe showed moving
//! and boxing that wrapper among the largest costs of a small answer. The answers are the same
//! either way, `Vary: Accept-Encoding` included (added where a client that asked would have got
//! a compressed body).

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use futures::future::{Either, MapOk, TryFutureExt};
use tower::{Layer, Service};
use tower_http::compression::{
    Compression, CompressionBody, CompressionLayer, DefaultPredicate, Predicate, ResponseFuture,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// [`Negotiated`] around a service.
#[derive(Clone, Copy, Default)]
pub struct NegotiatedLayer;

impl<S: Clone> Layer<S> for NegotiatedLayer {
    type Service = Negotiated<S>;

    fn layer(&self, inner: S) -> Negotiated<S> {
        Negotiated(CompressionLayer::new().gzip(true).br(true).layer(inner))
    }
}

/// Compresses the answers of requests that send `Accept-Encoding`; see the module docs. The
/// plain path calls the service inside tower-http's wrapper directly, so one copy of the stack
/// beneath serves both (hyper clones the whole application for every request).
#[derive(Clone)]
pub struct Negotiated<S>(Compression<S>);

type PlainFuture<F, B> = MapOk<F, fn(Response<B>) -> Response>;
type CompressedFuture<F, B> =
    MapOk<ResponseFuture<F, DefaultPredicate>, fn(Response<CompressionBody<B>>) -> Response>;

impl<S, B> Service<Request> for Negotiated<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send + Sync,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<PlainFuture<S::Future, B>, CompressedFuture<S::Future, B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The wrapper is ready when the service inside is: either path may follow.
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.headers().contains_key(header::ACCEPT_ENCODING) {
            Either::Right(self.0.call(req).map_ok(boxed as fn(_) -> _))
        } else {
            Either::Left(self.0.get_mut().call(req).map_ok(plain as fn(_) -> _))
        }
    }
}

fn boxed<B>(resp: Response<B>) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send + Sync,
{
    resp.map(Body::new)
}

/// An answer to a client that accepts no encoding: as is, with the `Vary` the compressing path
/// would have added (a shared cache must not hand this identity body to a client that asked
/// for gzip as if it were the only variant).
fn plain<B>(mut resp: Response<B>) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send + Sync,
{
    let compressible = !resp.headers().contains_key(header::CONTENT_ENCODING)
        && !resp.headers().contains_key(header::CONTENT_RANGE)
        && DefaultPredicate::new().should_compress(&resp);
    let varies = resp
        .headers()
        .get_all(header::VARY)
        .iter()
        .any(|v| contains_ignore_case(v.as_bytes(), b"accept-encoding"));
    if compressible && !varies {
        resp.headers_mut()
            .append(header::VARY, header::ACCEPT_ENCODING.into());
    }
    boxed(resp)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn answer(accept: Option<&str>, body: &'static str) -> Response {
        let svc = NegotiatedLayer.layer(tower::service_fn(|_req: Request| async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
        }));
        let mut req = Request::new(Body::empty());
        if let Some(a) = accept {
            req.headers_mut()
                .insert(header::ACCEPT_ENCODING, a.parse().unwrap());
        }
        svc.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn only_a_client_that_asks_gets_a_compressed_body_and_both_learn_it_varies() {
        let big = "{\"items\":[] }                                                        ";
        let gz = answer(Some("gzip"), big).await;
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::VARY], "accept-encoding");
        let plain = answer(None, big).await;
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        // Too small to be worth compressing: neither path says it varies.
        let tiny = answer(None, "{}").await;
        assert!(!tiny.headers().contains_key(header::VARY));
        let tiny = answer(Some("gzip"), "{}").await;
        assert!(!tiny.headers().contains_key(header::VARY));
        assert!(!tiny.headers().contains_key(header::CONTENT_ENCODING));
    }
}
