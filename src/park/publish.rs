//! The async publish ([`Publish`]) and reserve ([`Reserve`]): they wait
//! for room on a full `Block` topic by parking on the topic's space futex
//! word (the mirror image of an async receive; see [`crate::park`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::registry::{self, Kind, Notify, Registration};
use crate::error::PublishError;
use crate::producer::{Grant, Producer};
use crate::ring::{Claim, Parked};

/// The future of [`Producer::publish_async`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Publish<'a> {
    producer: Option<&'a mut Producer>,
    data: &'a [u8],
    parked: Option<Registration>,
    polls: u32,
}

/// The future of [`Producer::reserve_async`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Reserve<'a> {
    producer: Option<&'a mut Producer>,
    len: usize,
    parked: Option<Registration>,
    polls: u32,
}

impl Producer {
    /// Publishes a copy of `data`, waiting for room on a full `Block` topic
    /// without blocking a thread (see [`crate::park`]); ready at once when
    /// there is room. Cancel-safe: dropped before it is ready, it has
    /// published nothing.
    ///
    /// # Examples
    /// ```
    /// # use shmq::{Options, Topic};
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-apub-{}", std::process::id()));
    /// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
    /// let mut sub = topic.subscribe()?;
    /// let mut p = topic.producer()?;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::yield_now(); }
    /// # }
    /// block_on(p.publish_async(b"tock"))?;
    /// assert_eq!(&*sub.try_recv()?, b"tock");
    /// # drop((sub, p, topic)); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_async<'a>(&'a mut self, data: &'a [u8]) -> Publish<'a> {
        Publish { producer: Some(self), data, parked: None, polls: 0 }
    }

    /// Lends `len` bytes inside the ring (as [`Producer::reserve`]),
    /// waiting for room without blocking a thread. Cancel-safe: dropped
    /// before it is ready, it has claimed nothing.
    pub fn reserve_async(&mut self, len: usize) -> Reserve<'_> {
        Reserve { producer: Some(self), len, parked: None, polls: 0 }
    }
}

/// One step of waiting for a claim of `len` bytes: the claim, or `None`
/// once parked (the task is woken when room may have come).
fn step(
    p: &mut Producer,
    len: usize,
    parked: &mut Option<Registration>,
    polls: &mut u32,
    cx: &Context<'_>,
) -> Result<Option<Claim>, PublishError> {
    if let Some(c) = p.claim_now(len)? {
        *parked = None;
        return Ok(Some(c));
    }
    if let Some(r) = parked.as_ref() {
        if r.repark(cx.waker()) {
            return Ok(None);
        }
        *parked = None;
    } else if *polls < super::SPIN_POLLS {
        // Give way to the executor and look again before parking.
        *polls += 1;
        cx.waker().wake_by_ref();
        return Ok(None);
    }
    match p.park(len)? {
        Parked::Ready(c) => Ok(Some(c)),
        Parked::Wait(seen) => {
            *parked = Some(registry::register(p.ring(), Kind::Space, seen, Notify::Task(cx.waker().clone())));
            Ok(None)
        }
    }
}

impl Future for Publish<'_> {
    type Output = Result<(), PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(p) = this.producer.as_deref_mut() else {
            return Poll::Ready(Err(PublishError::Full)); // polled after completion
        };
        let r = match step(p, this.data.len(), &mut this.parked, &mut this.polls, cx) {
            Ok(Some(claim)) => p.fill(claim, this.data, 0),
            Ok(None) => return Poll::Pending,
            Err(e) => Err(e),
        };
        this.producer = None;
        this.parked = None;
        Poll::Ready(r)
    }
}

impl<'a> Future for Reserve<'a> {
    type Output = Result<Grant<'a>, PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(p) = this.producer.as_deref_mut() else {
            return Poll::Ready(Err(PublishError::Full)); // polled after completion
        };
        let r = step(p, this.len, &mut this.parked, &mut this.polls, cx);
        if let Ok(None) = r {
            return Poll::Pending;
        }
        this.parked = None;
        match (r, this.producer.take()) {
            (Ok(Some(claim)), Some(p)) => Poll::Ready(Ok(p.lend(claim))),
            (Err(e), _) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Err(PublishError::Full)),
        }
    }
}
