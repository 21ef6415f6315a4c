//! The clients' read side: a few threads, each with one epoll set (mio) over its share of the
//! sockets, parsing the server's frames straight from the bytes read.
//!
//! Why not a tokio task and a tungstenite stream per client, as the handshake uses: this process
//! stands in for 10,000 browsers on other machines, but shares instance B's two cores, so every
//! microsecond it spends per frame is taken from the server and shows up as latency. With a task per
//! client, a frame cost a task wake-up, waker registrations, tungstenite's buffer handling and a
//! second read for `WouldBlock` (56 % of the generator's time was user space, `perf`); here it is one
//! readiness event and, usually, one `read`.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::{id_key, now_us, ClientStats, Frame, Shared};

/// A client whose handshake is done, handed to a reader thread.
pub struct Conn {
    pub stream: std::net::TcpStream,
    /// Bytes that arrived after the handshake answer (the start of the first frames).
    pub pending: Vec<u8>,
    pub stats: ClientStats,
}

struct Thread {
    tx: mpsc::Sender<Conn>,
    waker: Arc<Waker>,
}

pub struct Readers {
    threads: Vec<Thread>,
    joins: Mutex<Vec<JoinHandle<Vec<ClientStats>>>>,
    stop: Arc<AtomicBool>,
}

const WAKER: Token = Token(usize::MAX);
/// Bytes read at once; a read that fills it is followed by another (sockets are edge-triggered).
const READ_CHUNK: usize = 64 * 1024;

impl Readers {
    pub fn start(n: usize, shared: Arc<Shared>) -> io::Result<Readers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(n);
        let mut joins = Vec::with_capacity(n);
        for i in 0..n {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = mpsc::channel();
            let (stop, shared) = (stop.clone(), shared.clone());
            joins.push(
                std::thread::Builder::new()
                    .name(format!("reader-{i}"))
                    .spawn(move || run(poll, rx, &stop, &shared))?,
            );
            threads.push(Thread { tx, waker });
        }
        Ok(Readers {
            threads,
            joins: Mutex::new(joins),
            stop,
        })
    }

    /// Hands client `i` to its reader thread.
    pub fn adopt(&self, i: usize, conn: Conn) {
        let t = &self.threads[i % self.threads.len()];
        if t.tx.send(conn).is_ok() {
            let _ = t.waker.wake();
        }
    }

    /// Sends every open client's close frame and returns every adopted client's figures.
    pub fn finish(&self) -> Vec<ClientStats> {
        self.stop.store(true, Ordering::Release);
        for t in &self.threads {
            let _ = t.waker.wake();
        }
        let joins = std::mem::take(&mut *self.joins.lock().unwrap());
        joins
            .into_iter()
            .flat_map(|j| j.join().unwrap_or_default())
            .collect()
    }
}

struct Live {
    stream: TcpStream,
    pending: Vec<u8>,
    stats: ClientStats,
}

fn run(
    mut poll: Poll,
    rx: mpsc::Receiver<Conn>,
    stop: &AtomicBool,
    shared: &Shared,
) -> Vec<ClientStats> {
    let mut events = Events::with_capacity(1024);
    let mut live: Vec<Option<Live>> = Vec::new();
    let mut ended: Vec<ClientStats> = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll: {e}");
        }
        let recv = now_us();
        for ev in events.iter() {
            if ev.token() == WAKER {
                while let Ok(conn) = rx.try_recv() {
                    let slot = live.len();
                    let mut c = Live {
                        stream: TcpStream::from_std(conn.stream),
                        pending: Vec::new(),
                        stats: conn.stats,
                    };
                    let ok = c.take(&conn.pending, now_us(), shared)
                        && poll
                            .registry()
                            .register(&mut c.stream, Token(slot), Interest::READABLE)
                            .is_ok();
                    if ok {
                        live.push(Some(c));
                    } else {
                        ended.push(c.stats);
                        live.push(None);
                    }
                }
                continue;
            }
            let slot = ev.token().0;
            let Some(c) = live.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if !c.on_readable(&mut buf, recv, shared) {
                let mut c = live[slot].take().expect("live slot");
                let _ = poll.registry().deregister(&mut c.stream);
                ended.push(c.stats);
            }
        }
        if stop.load(Ordering::Acquire) {
            for mut c in live.into_iter().flatten() {
                // Close frame, code 1000, masked with a zero key (a client must mask).
                let _ = c
                    .stream
                    .write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]);
                let _ = c.stream.shutdown(Shutdown::Write);
                c.stats.open_at_end = true;
                ended.push(c.stats);
            }
            return ended;
        }
    }
}

impl Live {
    /// Reads what the socket has; `false` when the connection ended.
    fn on_readable(&mut self, buf: &mut [u8], recv: i64, shared: &Shared) -> bool {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.stats.end_reason = Some("stream ended".into());
                    return false;
                }
                Ok(n) => {
                    if !self.take(&buf[..n], recv, shared) {
                        return false;
                    }
                    // A short read emptied the socket: the next bytes raise a new edge.
                    if n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stats.end_reason = Some(format!("error: {e}"));
                    return false;
                }
            }
        }
    }

    /// Handles the complete frames in `pending` + `data` and keeps the rest.
    fn take(&mut self, data: &[u8], recv: i64, shared: &Shared) -> bool {
        if self.pending.is_empty() {
            let (used, open) = self.frames(data, recv, shared);
            if open {
                self.pending.extend_from_slice(&data[used..]);
            }
            open
        } else {
            self.pending.extend_from_slice(data);
            let pending = std::mem::take(&mut self.pending);
            let (used, open) = self.frames(&pending, recv, shared);
            self.pending = pending;
            self.pending.drain(..used);
            open
        }
    }

    /// Returns how many bytes of whole frames were used, and whether the connection is still open.
    fn frames(&mut self, mut d: &[u8], recv: i64, shared: &Shared) -> (usize, bool) {
        let total = d.len();
        while let Some((b0, header, len)) = frame_at(d) {
            let payload = &d[header..header + len];
            match b0 & 0x0f {
                0x1 => self.text(payload, recv, shared),
                0x8 => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    self.stats.end_reason = Some(format!("closed by server: {code:?}"));
                    return (total - d.len(), false);
                }
                // Ping: answer with a pong carrying the same bytes (masked with a zero key).
                0x9 if len <= 125 => {
                    let mut pong = Vec::with_capacity(6 + len);
                    pong.extend_from_slice(&[0x8A, 0x80 | len as u8, 0, 0, 0, 0]);
                    pong.extend_from_slice(payload);
                    let _ = self.stream.write_all(&pong);
                }
                _ => {}
            }
            d = &d[header + len..];
        }
        (total - d.len(), true)
    }

    fn text(&mut self, payload: &[u8], recv: i64, shared: &Shared) {
        let st = &mut self.stats;
        let Ok(f) = serde_json::from_slice::<Frame>(payload) else {
            st.other_events += 1;
            return;
        };
        match f.kind {
            "welcome" => {
                if !st.welcomed {
                    st.welcomed = true;
                    shared.welcomed.fetch_add(1, Ordering::Relaxed);
                }
            }
            "order.created" => {
                let at = f
                    .at
                    .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
                    .map(|d| d.timestamp_micros());
                match (f.order, at) {
                    (Some(o), Some(at)) => st.created.push((id_key(o.id), recv, recv - at)),
                    _ => st.other_events += 1,
                }
            }
            "resync" => st.resyncs += 1,
            _ => st.other_events += 1,
        }
    }
}

/// A whole server frame at the start of `d`: (first byte, header length, payload length).
fn frame_at(d: &[u8]) -> Option<(u8, usize, usize)> {
    let (&b0, &b1) = (d.first()?, d.get(1)?);
    let (header, len) = match b1 & 0x7f {
        126 => (4, u16::from_be_bytes(d.get(2..4)?.try_into().ok()?) as usize),
        127 => (10, u64::from_be_bytes(d.get(2..10)?.try_into().ok()?) as usize),
        n => (2, n as usize),
    };
    // A server never masks; skip the key if one is there anyway.
    let header = header + if b1 & 0x80 != 0 { 4 } else { 0 };
    (d.len() >= header + len).then_some((b0, header, len))
}
