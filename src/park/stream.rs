//! A [`futures_core::Stream`] of owned messages: each is copied into a
//! buffer from a small pool and released in the ring at once, so holding
//! one never holds a producer back. For zero-copy, use
//! [`Subscriber::recv_async`] instead.

use std::future::Future as _;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::RecvError;
use crate::subscriber::Subscriber;

/// Buffers a stream keeps for reuse: enough for a consumer that holds a
/// few messages at a time; beyond it, dropped buffers are freed.
const POOL: usize = 32;

type Pool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A message copied out of the ring by a [`MessageStream`]. Derefs to its
/// payload; its buffer goes back to the stream's pool when dropped.
#[derive(Debug)]
pub struct OwnedMessage {
    data: Vec<u8>,
    seq: u64,
    msg_type: u32,
    timestamp_ns: u64,
    pool: Pool,
}

impl OwnedMessage {
    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The user type given at publish.
    pub fn msg_type(&self) -> u32 {
        self.msg_type
    }
    /// Publish time, `CLOCK_MONOTONIC` nanoseconds (0 without timestamps).
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    /// The payload as a `T`, copied (a pooled buffer is not aligned for
    /// any type): [`crate::ValueError`] if its length is not `T`'s size.
    pub fn read_value<T: bytemuck::Pod>(&self) -> Result<T, crate::ValueError> {
        crate::value::read(&self.data)
    }
    /// The payload as an owned vector (its buffer leaves the pool).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

impl Deref for OwnedMessage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for OwnedMessage {
    fn drop(&mut self) {
        if self.data.capacity() == 0 {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL {
            pool.push(std::mem::take(&mut self.data));
        }
    }
}

/// A stream of the messages of a subscriber it owns
/// ([`Subscriber::into_stream`]). Yields `Err` for what `recv` reports as
/// an error ([`RecvError::Lagged`] on `Overwrite` topics, then goes on;
/// [`RecvError::Evicted`] and [`RecvError::Corrupt`], after which polling
/// again reports them again). Ends (`None`) at the end of a closed stream
/// ([`RecvError::Closed`]).
///
/// # Examples
/// ```
/// # use shmq::{Options, Topic};
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-stream-{}", std::process::id()));
/// # let topic = Topic::create("t", &Options::new().dir(&dir).capacity(64 << 10))?;
/// use futures_core::Stream;
/// let mut stream = topic.subscribe()?.into_stream();
/// topic.producer()?.publish(b"one")?;
/// # fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = std::pin::Pin::new(&mut *s).poll_next(&mut cx) { return v; } std::thread::yield_now(); }
/// # }
/// // With futures' StreamExt: `while let Some(m) = stream.next().await`.
/// let m = next(&mut stream).expect("a message")?;
/// assert_eq!(&*m, b"one");
/// # drop((m, stream, topic)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MessageStream {
    sub: Subscriber,
    pool: Pool,
    parked: Option<super::registry::Registration>,
    polls: u32,
}

impl Subscriber {
    /// This subscriber as a [`Stream`] of owned (copied) messages.
    pub fn into_stream(self) -> MessageStream {
        MessageStream { sub: self, pool: Arc::default(), parked: None, polls: 0 }
    }
}

impl MessageStream {
    /// The subscriber back (its position is where the stream left it).
    pub fn into_inner(self) -> Subscriber {
        self.sub
    }

    fn buffer(&self) -> Vec<u8> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default()
    }
}

impl Stream for MessageStream {
    type Item = Result<OwnedMessage, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut data = this.buffer();
        // Borrow the subscriber through a `Recv` that keeps our parked wait
        // across polls (moved in and out, so it survives `Pending`).
        let mut fut = this.sub.recv_async();
        fut.resume(this.parked.take(), this.polls);
        let r = Pin::new(&mut fut).poll(cx);
        let r = match r {
            Poll::Pending => {
                (this.parked, this.polls) = fut.into_parked();
                return Poll::Pending;
            }
            Poll::Ready(Err(RecvError::Closed)) => return Poll::Ready(None),
            Poll::Ready(r) => r,
        };
        this.polls = 0;
        Poll::Ready(Some(r.map(|m| {
            data.clear();
            data.extend_from_slice(&m);
            OwnedMessage {
                data,
                seq: m.seq(),
                msg_type: m.msg_type(),
                timestamp_ns: m.timestamp_ns(),
                pool: this.pool.clone(),
            }
        })))
    }
}
