//! The async receive ([`Recv`]) and the readiness descriptor for event
//! loops ([`Subscriber::readiness_fd`]).

use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::futex;
use super::registry::{self, Kind, Notify, Registration};
use crate::error::RecvError;
use crate::ring::{FrameView, Parked};
use crate::subscriber::{Message, Subscriber};

/// The future of [`Subscriber::recv_async`]: the next message, zero-copy.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Recv<'a> {
    sub: Option<&'a mut Subscriber>,
    parked: Option<Registration>,
    /// Times this future gave way before parking (see [`super::SPIN_POLLS`]).
    polls: u32,
}

impl Subscriber {
    /// Receives the next message, waiting without a thread: the future is
    /// ready at once while messages are waiting (no system call, no
    /// allocation), and parks on the topic's waker thread when the ring is
    /// empty (see [`crate::park`]). Cancel-safe: dropping the future
    /// consumes nothing. Every guarantee of [`Subscriber::recv`] holds
    /// ([`RecvError::Lagged`] counts, eviction, stuck-claim and dead-peer
    /// repair, durable subscribers, consumer groups).
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-async-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// topic.producer()?.publish(b"tick")?;
    /// // Any executor: here a minimal one that polls until ready.
    /// let msg = block_on(sub.recv_async())?;
    /// assert_eq!(&*msg, b"tick");
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// # drop(msg); drop((sub, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_async(&mut self) -> Recv<'_> {
        Recv { sub: Some(self), parked: None, polls: 0 }
    }
}

impl<'a> Recv<'a> {
    /// Continues a wait an earlier `Recv` of the same subscriber parked
    /// (for [`super::MessageStream`], which makes one `Recv` per poll).
    pub(super) fn resume(&mut self, parked: Option<Registration>, polls: u32) {
        self.parked = parked;
        self.polls = polls;
    }

    /// The parked wait and the polls given way, to be resumed by a later `Recv`.
    pub(super) fn into_parked(mut self) -> (Option<Registration>, u32) {
        (self.parked.take(), self.polls)
    }

    fn finish(&mut self, r: Result<FrameView, RecvError>) -> Poll<Result<Message<'a>, RecvError>> {
        self.parked = None;
        match (self.sub.take(), r) {
            (Some(sub), Ok(v)) => Poll::Ready(sub.lend(v)),
            (_, Err(e)) => Poll::Ready(Err(e)),
            (None, Ok(_)) => Poll::Ready(Err(RecvError::Empty)),
        }
    }
}

impl<'a> Future for Recv<'a> {
    type Output = Result<Message<'a>, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(sub) = this.sub.as_deref_mut() else {
            return Poll::Ready(Err(RecvError::Empty)); // polled after completion
        };
        // The ring first, every time: a message that came is taken without
        // a system call, whatever the waker thread has seen.
        match sub.next_view() {
            Ok(Some(v)) => return this.finish(Ok(v)),
            Ok(None) => {}
            Err(e) => return this.finish(Err(e)),
        }
        if let Some(p) = &this.parked {
            if p.repark(cx.waker()) {
                return Poll::Pending;
            }
            this.parked = None; // ended by the waker thread: look and park again
        } else if this.polls < super::SPIN_POLLS {
            // Give way to the executor and look again before parking.
            this.polls += 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match sub.park() {
            Ok(Parked::Ready(v)) => this.finish(Ok(v)),
            Ok(Parked::Wait(seen)) => {
                this.parked = Some(registry::register(sub.ring(), Kind::Data, seen, Notify::Task(cx.waker().clone())));
                Poll::Pending
            }
            Err(e) => this.finish(Err(e)),
        }
    }
}

/// A subscriber's readiness descriptor and its parked wait.
#[derive(Debug)]
pub struct Readiness {
    fd: Arc<OwnedFd>,
    parked: Option<Registration>,
}

impl Subscriber {
    /// A descriptor (an `eventfd`) for event loops that are not Rust
    /// executors (epoll, mio, libuv, asyncio): after [`Subscriber::arm`]
    /// returns `Ok(false)`, it becomes readable when a message may be
    /// waiting. Made on first use, owned by the subscriber (closed with
    /// it); the same descriptor every call.
    ///
    /// The loop: receive with `try_recv` until [`RecvError::Empty`], then
    /// `arm()`; if it returns `true` a message came meanwhile (receive
    /// again), else wait for the descriptor to be readable (it may also
    /// become readable with nothing to receive, at least every 50 ms while
    /// armed, so dead peers are looked for: receive, then arm again).
    pub fn readiness_fd(&mut self) -> std::io::Result<RawFd> {
        if let Some(r) = self.readiness_mut() {
            return Ok(r.fd.as_raw_fd());
        }
        let fd = Arc::new(futex::eventfd()?);
        let raw = fd.as_raw_fd();
        *self.readiness_mut() = Some(Readiness { fd, parked: None });
        Ok(raw)
    }

    /// Arms the readiness descriptor (making it first if needed): `Ok(true)`
    /// if a message is waiting now (nothing armed: receive it), `Ok(false)`
    /// once armed (the descriptor becomes readable when a message may have
    /// come). Clears the descriptor's readable state either way, and
    /// releases a message lent by [`Subscriber::recv_raw`] (as a receive
    /// would).
    pub fn arm(&mut self) -> Result<bool, RecvError> {
        self.release_raw();
        if self.readiness_mut().is_none() {
            self.readiness_fd().map_err(|e| RecvError::Resource(format!("cannot make an eventfd: {e}")))?;
        }
        let Some(r) = self.readiness_mut() else {
            return Err(RecvError::Empty);
        };
        let fd = r.fd.clone();
        r.parked = None;
        futex::drain(&fd);
        if self.has_pending() {
            return Ok(true);
        }
        if let Some(v) = self.next_view()? {
            self.unread(v);
            return Ok(true);
        }
        match self.park()? {
            Parked::Ready(v) => {
                self.unread(v);
                Ok(true)
            }
            Parked::Wait(seen) => {
                let reg = registry::register(self.ring(), Kind::Data, seen, Notify::Fd(fd));
                if let Some(r) = self.readiness_mut() {
                    r.parked = Some(reg);
                }
                Ok(false)
            }
        }
    }
}
