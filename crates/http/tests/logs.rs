//! Access tokens never reach the application's logs: the WebSocket's `?access_token=` (and any
//! query string) stays out of the request line, spans and error logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use till_test_support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Everything every log call writes, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn access_tokens_in_query_strings_are_never_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    // Everything the server side logs, at every level; the test's own clients (which of course
    // know the URL they request) are left out.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,tungstenite::handshake::client=off,tokio_tungstenite=off,reqwest=off,\
             hyper_util::client=off,hyper::client=off",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::spawn().await;
    let staff = app.user("staff").await;
    let token = staff.token.clone();
    // A good token on the WebSocket, a bad one, and a token on an ordinary route.
    let url = format!("ws://{}/api/v1/ws?access_token={token}", app.addr);
    let (ws, _) = tokio_tungstenite::connect_async(url.into_client_request().unwrap())
        .await
        .unwrap();
    drop(ws);
    let bad = "not-a-real-token-but-secret-all-the-same";
    let url = format!("ws://{}/api/v1/ws?access_token={bad}", app.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    // A rejected query (its error names the bad parameter, never echoes the query string).
    let r = app
        .anon()
        .get(&format!("/api/v1/products?access_token={token}&limit=oops"))
        .await;
    assert!((400..500).contains(&r.status()), "{}", r.status());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = logs.text();
    assert!(
        text.contains("served") && text.contains("/api/v1/ws"),
        "the request log was captured: {text}"
    );
    let signature = token.rsplit('.').next().unwrap();
    for secret in [token.as_str(), signature, bad] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "a token reached the logs: {leaks:#?}");
    }
    assert!(
        !text.contains("access_token="),
        "a query string reached the logs"
    );
}
