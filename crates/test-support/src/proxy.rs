//! A TCP proxy a test can cut: the application talks to PostgreSQL (or Redis) through it, and
//! [`TcpProxy::stop`] makes the dependency vanish the way a crash or a restart does (every open
//! connection reset, new ones refused) until [`TcpProxy::start`] brings it back on the same port.
//! Cheaper and more precise than stopping the shared server every other test is using.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    /// Bumped by `stop`: every connection task watching it ends (dropping both sockets).
    generation: watch::Sender<u64>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<std::sync::atomic::AtomicU64>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start_to(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let (generation, _) = watch::channel(0);
        let proxy = TcpProxy {
            addr,
            target,
            generation,
            acceptor: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.accept_on(listener);
        proxy
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn accept_on(&self, listener: TcpListener) {
        let target = self.target;
        let generation = self.generation.clone();
        let count = self.connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        *self.acceptor.lock().unwrap() = Some(task);
    }

    /// The dependency goes away: the listener closes (new connections are refused) and every
    /// open connection is dropped.
    pub fn stop(&self) {
        if let Some(task) = self.acceptor.lock().unwrap().take() {
            task.abort();
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// The dependency is back, on the same address.
    pub async fn start(&self) {
        // The aborted acceptor may take a moment to release the port.
        for _ in 0..50 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                self.accept_on(listener);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("could not listen on {} again", self.addr);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `url` (`scheme://[user[:pass]@]host:port/…`) with its host and port replaced by `addr`.
pub fn reroute(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{addr}{path}")
}

/// The socket address `url` points at.
pub async fn target_of(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    tokio::net::lookup_host(host_port)
        .await
        .expect("resolve")
        .next()
        .expect("an address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroutes_the_authority_only() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            reroute("postgres://postgres@127.0.0.1:5432/till_t_1", addr),
            "postgres://postgres@127.0.0.1:4000/till_t_1"
        );
        assert_eq!(
            reroute("redis://localhost:6379", addr),
            "redis://127.0.0.1:4000"
        );
    }
}
