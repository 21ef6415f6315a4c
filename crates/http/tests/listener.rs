//! The listener's edges: a client that never finishes its request headers is disconnected after
//! `HTTP_HEADER_READ_TIMEOUT_MS`, and beyond `MAX_CONNECTIONS` new connections wait (unserved)
//! until one closes, without harming the process.

use std::time::{Duration, Instant};

use till_test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIVENESS: &[u8] = b"GET /health/liveness HTTP/1.1\r\nHost: till\r\n\r\n";

/// Sends one request on `conn` and waits up to `wait` for the start of an answer.
async fn ask(conn: &mut TcpStream, wait: Duration) -> Option<String> {
    conn.write_all(LIVENESS).await.unwrap();
    answer(conn, wait).await
}

async fn answer(conn: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, conn.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn a_client_stalling_in_its_headers_is_disconnected() {
    let app =
        TestApp::spawn_with(&Opts::new().await.set("HTTP_HEADER_READ_TIMEOUT_MS", "500")).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /health/liveness HTTP/1.1\r\nHost: ti")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("the server must close the stalled connection");
    // Closed (EOF or reset), possibly after a 408.
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    // A prompt client is served as usual.
    let mut ok = TcpStream::connect(app.addr).await.unwrap();
    let resp = ask(&mut ok, Duration::from_secs(5)).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(&Opts::new().await.set("MAX_CONNECTIONS", "2")).await;
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    for c in [&mut first, &mut second] {
        let resp = ask(c, Duration::from_secs(5)).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    // The third connects (the kernel's backlog takes it) but is not served...
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(ask(&mut third, Duration::from_millis(700)).await, None);
    // ... until one of the first two closes.
    drop(first);
    let resp = answer(&mut third, Duration::from_secs(5))
        .await
        .expect("served once a slot freed");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // The process is fine: the remaining connection is still served.
    let resp = ask(&mut second, Duration::from_secs(5)).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
