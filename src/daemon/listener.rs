//! The metrics listener's connections: a bounded number held at once, each for a bounded
//! lifetime, one that sends nothing closed within a second, and at the cap a new one let in
//! by closing the quietest, so that clients which hold connections (or reconnect as soon as
//! they are closed) cannot keep a scraper or a `/healthz` probe out.

use futures_util::task::AtomicWaker;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How much of the process the listener may hold: a scraper needs one short connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; a new one past this closes the quietest. Room for many
    /// more clients than a scraper and a probe: the unit's `LimitNOFILE` is 65536.
    pub connections: usize,
    /// How long one connection may stay open, idle or not.
    pub lifetime: Duration,
    /// How long a connection may stay open without sending a byte: a probe sends its
    /// request at once, a client that only holds a place is closed.
    pub first_byte: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 128,
            lifetime: Duration::from_secs(10),
            first_byte: Duration::from_secs(1),
        }
    }
}

/// One held connection as the listener sees it.
#[derive(Default)]
struct Slot {
    /// Closed by the listener to make room: its reads and writes fail from now on.
    evicted: AtomicBool,
    /// Has sent no byte yet (a connection that only holds a place).
    silent: AtomicBool,
    /// When it last sent something (or connected), in ms since the listener started.
    last_active_ms: AtomicU64,
    /// Wakes the connection's pending read when it is evicted.
    waker: AtomicWaker,
}

/// A listener that holds at most `limits.connections` connections, each for at most
/// `limits.lifetime`. Past the cap, the quietest held connection (silent ones first, then
/// the longest without a byte) is closed for the new one: a probe that sends its request at
/// once is never the quietest, however fast other clients reconnect.
pub struct Capped {
    inner: tokio::net::TcpListener,
    slots: Mutex<Vec<Weak<Slot>>>,
    limits: Limits,
    started: Instant,
}

/// One accepted connection, closed (reads and writes fail) when its time is up or when the
/// listener evicts it.
pub struct CappedStream {
    stream: tokio::net::TcpStream,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Ends the connection if it is still silent then.
    silence: std::pin::Pin<Box<tokio::time::Sleep>>,
    slot: Arc<Slot>,
    started: Instant,
}

impl Capped {
    pub fn new(inner: tokio::net::TcpListener, limits: Limits) -> Capped {
        Capped {
            inner,
            slots: Mutex::new(Vec::new()),
            limits,
            started: Instant::now(),
        }
    }

    /// Makes room for one more connection, evicting the quietest when the cap is reached.
    fn admit(&self) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|w| {
            w.upgrade()
                .is_some_and(|s| !s.evicted.load(Ordering::SeqCst))
        });
        if slots.len() >= self.limits.connections.max(1) {
            let quietest = slots
                .iter()
                .enumerate()
                .filter_map(|(i, w)| w.upgrade().map(|s| (i, s)))
                .min_by_key(|(_, s)| {
                    (
                        !s.silent.load(Ordering::SeqCst),
                        s.last_active_ms.load(Ordering::SeqCst),
                    )
                });
            if let Some((i, s)) = quietest {
                s.evicted.store(true, Ordering::SeqCst);
                s.waker.wake();
                slots.swap_remove(i);
            }
        }
        let slot = Arc::new(Slot {
            silent: AtomicBool::new(true),
            last_active_ms: AtomicU64::new(self.started.elapsed().as_millis() as u64),
            ..Slot::default()
        });
        slots.push(Arc::downgrade(&slot));
        slot
    }
}

impl axum::serve::Listener for Capped {
    type Io = CappedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let slot = self.admit();
                    let deadline = Box::pin(tokio::time::sleep(self.limits.lifetime));
                    let silence = Box::pin(tokio::time::sleep(self.limits.first_byte));
                    return (
                        CappedStream {
                            stream,
                            deadline,
                            silence,
                            slot,
                            started: self.started,
                        },
                        addr,
                    );
                }
                // Out of descriptors, say: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl CappedStream {
    /// Its lifetime is over, it stayed silent too long, or the listener evicted it.
    fn closed(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.slot.waker.register(cx.waker());
        self.slot.evicted.load(Ordering::SeqCst)
            || self.deadline.as_mut().poll(cx).is_ready()
            || (self.slot.silent.load(Ordering::SeqCst)
                && self.silence.as_mut().poll(cx).is_ready())
    }
}

fn closed_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connection closed by the listener",
    )
}

impl tokio::io::AsyncRead for CappedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.closed(cx) {
            return std::task::Poll::Ready(Err(closed_error()));
        }
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.slot.silent.store(false, Ordering::SeqCst);
            let now = self.started.elapsed().as_millis() as u64;
            self.slot.last_active_ms.store(now, Ordering::SeqCst);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for CappedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.closed(cx) {
            return std::task::Poll::Ready(Err(closed_error()));
        }
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
