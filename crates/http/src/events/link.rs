//! One WebSocket connection's socket, shared by its task (reads, pings, close) and the hub's
//! fan-out threads (events), with the frame codec both use (tungstenite's frame headers).
//!
//! Why the hub writes to the socket itself: delivering an event by waking each connection's task
//! cost ~5 µs of scheduling, polling and buffering per connection, a third of an instance's CPU
//! when one event goes to 10,000 boards (`perf`, loadtests/ws.sh). Here an event is encoded once
//! and each delivery is one lock and one non-blocking `write`; the connection's task is woken only
//! when the socket is full and the rest must wait for room.

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::Event;

/// A send that makes no progress for this long means the client is not reading: drop it.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes queued for a client whose socket is full, beyond what the kernel holds. Past this its
/// events are dropped and, once it has caught up, it is told to resync: a slow client costs
/// bounded memory and never holds up the others.
const MAX_QUEUED: usize = 64 * 1024;
/// Largest frame a client may send (it only sends pongs, pings and close frames).
const MAX_CLIENT_FRAME: u64 = 16 * 1024;

pub struct Link {
    tcp: TcpStream,
    out: Mutex<Out>,
    /// Wakes the connection's task: bytes are queued for it to finish writing.
    wake: Notify,
}

struct Out {
    /// Bytes accepted but not yet written (the socket was full).
    queued: Vec<u8>,
    /// Highest event `seq` this client has been given (or skipped, when lagging).
    sent_up_to: i64,
    /// While the connection sends its welcome and replays what a reconnecting client missed,
    /// live events wait here, so they follow in order.
    held: Option<Vec<Arc<Event>>>,
    /// Events were dropped for this client; it gets a `resync` once its queue drains.
    lagging: bool,
    dead: bool,
}

impl Link {
    /// A link that holds live events until [`Link::release`].
    pub fn new(tcp: TcpStream) -> Link {
        Link {
            tcp,
            out: Mutex::new(Out {
                queued: Vec::new(),
                sent_up_to: i64::MIN,
                held: Some(Vec::new()),
                lagging: false,
                dead: false,
            }),
            wake: Notify::new(),
        }
    }

    pub(super) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live event (from the hub). Never blocks: what the socket cannot take now is queued for
    /// the connection's task, up to [`MAX_QUEUED`].
    pub fn event(&self, ev: &Arc<Event>) {
        self.events(std::slice::from_ref(ev), &[IoSlice::new(ev.wire())]);
    }

    /// Live events in `seq` order, with their frames as `wires` (one each), written with one
    /// system call: when events come faster than they can be written one by one, the hub hands
    /// them over in batches and each connection's cost per batch stays about that of one event.
    pub fn events(&self, evs: &[Arc<Event>], wires: &[IoSlice<'_>]) {
        let mut out = self.lock();
        let new = evs.partition_point(|e| e.seq <= out.sent_up_to);
        let (evs, wires) = (&evs[new..], &wires[new..]);
        let Some(last) = evs.last() else { return };
        if out.dead {
            return;
        }
        if let Some(held) = out.held.as_mut() {
            held.extend(evs.iter().cloned());
            return;
        }
        out.sent_up_to = last.seq;
        if out.lagging {
            return;
        }
        if !out.queued.is_empty() {
            for ev in evs {
                self.write(&mut out, ev.wire(), true);
            }
            return;
        }
        let mut written = match self.tcp.try_write_vectored(wires) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                out.dead = true;
                self.wake.notify_one();
                return;
            }
        };
        let mut rest = false;
        for w in wires {
            if written >= w.len() {
                written -= w.len();
            } else {
                out.queued.extend_from_slice(&w[written..]);
                written = 0;
                rest = true;
            }
        }
        if rest {
            self.wake.notify_one();
        }
    }

    /// One of the connection's own frames (welcome, replayed events, ping, pong, close): always
    /// queued, whatever the queue holds.
    pub fn send(&self, frame: &[u8]) {
        let mut out = self.lock();
        if !out.dead {
            self.write(&mut out, frame, false);
        }
    }

    /// Ends the hold: events up to `sent_up_to` were covered by the welcome and the replay; the
    /// held ones after it are sent now, then live ones as they come.
    pub fn release(&self, sent_up_to: i64) {
        let mut out = self.lock();
        out.sent_up_to = out.sent_up_to.max(sent_up_to);
        for ev in out.held.take().unwrap_or_default() {
            if ev.seq > out.sent_up_to {
                out.sent_up_to = ev.seq;
                self.write(&mut out, ev.wire(), true);
            }
        }
    }

    /// Stops all further writes (the connection is ending).
    pub fn kill(&self) {
        let mut out = self.lock();
        out.dead = true;
        out.queued = Vec::new();
        out.held = None;
    }

    fn write(&self, out: &mut Out, bytes: &[u8], droppable: bool) {
        if out.lagging && droppable {
            return;
        }
        if !out.queued.is_empty() {
            if droppable && out.queued.len() + bytes.len() > MAX_QUEUED {
                out.lagging = true;
            } else {
                out.queued.extend_from_slice(bytes);
            }
            return;
        }
        match self.tcp.try_write(bytes) {
            Ok(n) if n == bytes.len() => return,
            Ok(n) => out.queued.extend_from_slice(&bytes[n..]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => out.queued.extend_from_slice(bytes),
            Err(_) => out.dead = true,
        }
        self.wake.notify_one();
    }

    /// Resolves when the task has queued bytes to finish writing (or the link died).
    pub(super) async fn woken(&self) {
        self.wake.notified().await
    }

    /// Writes everything queued, waiting for room as needed; then the `resync` a lagging client
    /// is owed. Fails when the client stops reading for [`SEND_TIMEOUT`] or the socket fails.
    pub(super) async fn flush(&self) -> io::Result<()> {
        loop {
            {
                let mut out = self.lock();
                if out.dead {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                if out.queued.is_empty() {
                    if !out.lagging {
                        if out.queued.capacity() > 4 * 1024 {
                            out.queued = Vec::new();
                        }
                        return Ok(());
                    }
                    out.lagging = false;
                    // Operators watch this: clients too slow for the event rate (`/metrics`).
                    ::metrics::counter!("till_ws_resyncs_total").increment(1);
                    let resync = text_frame(&notice("resync", out.sent_up_to));
                    out.queued.extend_from_slice(&resync);
                }
                match self.tcp.try_write(&out.queued) {
                    Ok(n) => {
                        out.queued.drain(..n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        out.dead = true;
                        return Err(e);
                    }
                }
            }
            match tokio::time::timeout(SEND_TIMEOUT, self.tcp.writable()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
    }
}

/// `{"type": kind, "at": now, "seq": seq}`: the text of `welcome` and `resync`.
pub(super) fn notice(kind: &str, seq: i64) -> String {
    json!({"type": kind, "at": chrono::Utc::now(), "seq": seq}).to_string()
}

fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    // Formatting into a Vec cannot fail.
    let _ = header.format(len, &mut out);
    out.extend_from_slice(payload);
    out
}

pub(crate) fn text_frame(text: &str) -> Vec<u8> {
    frame(OpCode::Data(Data::Text), text.as_bytes())
}

pub(super) fn ping_frame() -> Vec<u8> {
    frame(OpCode::Control(Control::Ping), &[])
}

pub(super) fn pong_frame(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Control(Control::Pong), payload)
}

pub(super) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(OpCode::Control(Control::Close), &payload)
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Incoming {
    /// Data, or a pong: the client is alive.
    Activity,
    Ping(Vec<u8>),
    /// The client is closing (with its close code, if it gave one).
    Close(Option<u16>),
}

/// Takes the first whole frame off `buf`: `Ok(None)` while it is incomplete, `Err(close code)`
/// when it breaks the protocol (unmasked, reserved opcode, too large).
pub(super) fn next_frame(buf: &mut Vec<u8>) -> Result<Option<Incoming>, u16> {
    let mut cursor = io::Cursor::new(&buf[..]);
    let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(|_| 1002u16)? else {
        return Ok(None);
    };
    if len > MAX_CLIENT_FRAME {
        return Err(1009);
    }
    let start = cursor.position() as usize;
    let end = start + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    // RFC 6455 §5.1: a server must close the connection on an unmasked client frame.
    let Some(mask) = header.mask else {
        return Err(1002);
    };
    let mut payload = buf[start..end].to_vec();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    buf.drain(..end);
    Ok(Some(match header.opcode {
        OpCode::Data(Data::Text | Data::Binary | Data::Continue) => Incoming::Activity,
        OpCode::Control(Control::Pong) => Incoming::Activity,
        OpCode::Control(Control::Ping) => Incoming::Ping(payload),
        OpCode::Control(Control::Close) => Incoming::Close(
            (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
        ),
        OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => {
            return Err(1002)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut f = vec![first, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn client_frames_are_unmasked_and_taken_one_at_a_time() {
        let mut buf = masked(0x89, b"hi");
        buf.extend(masked(0x88, &1000u16.to_be_bytes()));
        buf.extend(&masked(0x8A, b"")[..3]);
        assert_eq!(
            next_frame(&mut buf),
            Ok(Some(Incoming::Ping(b"hi".to_vec())))
        );
        assert_eq!(next_frame(&mut buf), Ok(Some(Incoming::Close(Some(1000)))));
        assert_eq!(next_frame(&mut buf), Ok(None), "an incomplete frame waits");
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn protocol_breaches_close_the_connection() {
        assert_eq!(next_frame(&mut vec![0x89, 0x00]), Err(1002), "unmasked");
        assert_eq!(
            next_frame(&mut masked(0x83, b"x")),
            Err(1002),
            "reserved opcode"
        );
        let mut big = vec![0x82, 0xFF];
        big.extend((MAX_CLIENT_FRAME + 1).to_be_bytes());
        big.extend([0; 4]);
        assert_eq!(next_frame(&mut big), Err(1009), "too large");
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        assert_eq!(text_frame("ab"), [0x81, 2, b'a', b'b']);
        let long = "x".repeat(300);
        assert_eq!(text_frame(&long)[..4], [0x81, 126, 1, 44]);
        assert_eq!(close_frame(1001, "bye")[..4], [0x88, 5, 0x03, 0xE9]);
        assert_eq!(ping_frame(), [0x89, 0]);
    }
}
