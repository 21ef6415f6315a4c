//! The baseline of `loadtests/catalog.sh`: the least an axum server can do for Till's two
//! cheapest answers, on the same runtime (tokio, multi-threaded, one worker per core) and the
//! same `axum::serve`. Till's figures are quoted as ratios to these, so the ratio is the cost
//! of Till's own middleware and handlers, not of Rust, tokio or axum.
//!
//!   cargo run --release --example bare_axum -- --port 8080 --page products.json
//!
//! `GET /health/liveness` → `{"status":"alive"}` (as Till's); `GET /page` → the bytes of the
//! `--page` file as `application/json` (the benchmark saves Till's cached product page there).

use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let page = Bytes::from(match arg("--page") {
        Some(path) => std::fs::read(path)?,
        None => b"[]".to_vec(),
    });
    let app = Router::new()
        .route(
            "/health/liveness",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"status":"alive"}"#,
                )
            }),
        )
        .route(
            "/page",
            get(move || {
                let page = page.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], page) }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("PORT {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}
