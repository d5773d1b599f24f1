//! `shmq.Subscriber`: receives messages as `shmq.Message` objects that view
//! the ring in place.
//!
//! A Python message must outlive the next receive: `for msg in sub:` keeps
//! the previous message (or a numpy array over it) alive while it takes
//! the next. So a plain or durable subscriber of a Block topic reads ahead
//! (`Subscriber::recv_ahead_raw`): each message stays in the ring until
//! it is released (by `release()`, `with`, or when its last view goes),
//! and the subscriber's cursor, the one that holds the producer back, is
//! published through the longest released prefix (`release_through`).
//! The [`Ledger`] keeps that order.
//!
//! A consumer-group member holds one message at a time: receiving the next
//! releases the previous, which must have no view left. An `Overwrite`
//! subscriber receives copies, so each message owns its bytes.
//!
//! Threads: the library subscriber sits in a mutex that a blocking receive
//! holds for one slice at a time, with the GIL released. A message
//! released by another thread meanwhile cannot take it; it leaves its
//! release in the ledger (`deferred`) and whoever holds the subscriber
//! next, or the receive at its slice's end, publishes it.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use shmq::{Ack, Policy, RecvError, Subscriber, Wait};

use crate::errors;
use crate::message::{Body, PyMessage};
use crate::producer::lock;
use crate::wait::{deadline, sliced};

/// What a subscriber's messages are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Views held in the ring, released in order (plain, durable; Block).
    Ahead,
    /// One view held at a time (consumer-group member).
    Group,
    /// Copies (Overwrite).
    Copy,
}

/// State shared by a subscriber and its messages.
#[derive(Debug)]
pub struct Shared {
    pub sub: Mutex<Subscriber>,
    pub ledger: Mutex<Ledger>,
    pub mode: Mode,
    /// Whether `ledger.deferred` holds a release: read without the
    /// ledger's lock on every receive (the common answer is no).
    pending: AtomicBool,
}

/// The messages a subscriber has lent, in order.
#[derive(Debug, Default)]
pub struct Ledger {
    /// `Ahead`: every message read ahead and not yet published as
    /// released, oldest first, with whether Python released it.
    held: VecDeque<(Ack, bool)>,
    /// `Ahead`: a release through this ack not yet published (its
    /// releaser could not take the subscriber).
    deferred: Option<Ack>,
    /// `Group`: the message held, by its id, and its shared state.
    pub group_held: Option<Arc<crate::message::MsgState>>,
}

impl Shared {
    /// Publishes a deferred release, with the subscriber locked.
    fn apply_deferred(&self, sub: &mut Subscriber) {
        // Relaxed: a hint; the value is read under the ledger's lock. A
        // release missed here is applied at the holder's `settle`, or at
        // the next slice of a blocking receive (each slice comes here).
        if !self.pending.load(Relaxed) {
            return;
        }
        let ack = {
            let mut l = lock(&self.ledger);
            self.pending.store(false, Relaxed);
            l.deferred.take()
        };
        if let Some(ack) = ack {
            sub.release_through(ack);
        }
    }

    /// After a lock holder let go of the subscriber: publishes a release
    /// deferred meanwhile. Dekker's pattern with [`Shared::defer`]: each
    /// side writes (the unlock; `pending`), fences, then reads the other's
    /// (`pending`; the lock), so one of them sees the release.
    fn settle(&self) {
        fence(SeqCst);
        if self.pending.load(Relaxed) {
            if let Ok(mut sub) = self.sub.try_lock() {
                self.apply_deferred(&mut sub);
            }
        }
    }

    /// Leaves a release through `ack` for the subscriber's holder, then
    /// publishes it itself if the holder let go meanwhile.
    fn defer(&self, ack: Ack) {
        {
            let mut l = lock(&self.ledger);
            l.deferred = Some(l.deferred.map_or(ack, |d| d.max(ack)));
            self.pending.store(true, Relaxed);
        }
        fence(SeqCst);
        if let Ok(mut sub) = self.sub.try_lock() {
            self.apply_deferred(&mut sub);
        }
    }

    /// Python released the `Ahead` message `ack`: marks it, and publishes
    /// the longest released prefix.
    pub fn release_ahead(&self, ack: Ack) {
        let through = {
            let mut l = lock(&self.ledger);
            if let Ok(i) = l.held.binary_search_by(|(a, _)| a.cmp(&ack)) {
                l.held[i].1 = true;
            }
            let mut through = None;
            while let Some(&(a, true)) = l.held.front() {
                through = Some(a);
                l.held.pop_front();
            }
            through
        };
        let Some(a) = through else { return };
        // Published now if the subscriber is free; else by its holder.
        match self.sub.try_lock() {
            Ok(mut sub) => {
                sub.release_through(a);
                self.apply_deferred(&mut sub);
            }
            Err(_) => self.defer(a),
        }
    }
}

/// A subscriber. `recv()` returns a `shmq.Message`, a zero-copy view of
/// the payload in the ring; iterate (`for msg in sub:`) to receive until
/// the stream is closed.
#[derive(Debug)]
#[pyclass(module = "shmq", name = "Subscriber", frozen)]
pub struct PySubscriber {
    shared: Arc<Shared>,
    /// `Copy`: a message held back after its loss was reported.
    stash: Mutex<Option<PyMessage>>,
}

/// A message the library lent, carried out of a GIL-free slice.
#[derive(Debug)]
struct Lent(shmq::RawMessage);

// SAFETY: the pointer is into the topic's mapping (or the subscriber's
// copy buffer), shared by every thread of the process; the library keeps
// it valid until the message is released, whichever thread does that.
unsafe impl Send for Lent {}

/// What one slice of a receive found.
enum Got {
    Msg(Lent, Option<Ack>, u32),
    Err(RecvError),
}

impl PySubscriber {
    pub fn new(sub: Subscriber) -> PyResult<PySubscriber> {
        let mode = if sub.can_read_ahead() {
            Mode::Ahead
        } else if sub.policy() == Policy::Overwrite {
            Mode::Copy
        } else {
            Mode::Group
        };
        Ok(PySubscriber {
            shared: Arc::new(Shared {
                sub: Mutex::new(sub),
                ledger: Mutex::new(Ledger::default()),
                mode,
                pending: AtomicBool::new(false),
            }),
            stash: Mutex::new(None),
        })
    }

    /// One receive of the subscriber's kind, waiting as `wait` says.
    fn take(shared: &Shared, sub: &mut Subscriber, wait: Wait) -> Got {
        shared.apply_deferred(sub);
        let r = match shared.mode {
            Mode::Ahead => sub.recv_ahead_raw(wait).map(|(m, a)| (m, Some(a))),
            Mode::Group | Mode::Copy => sub.recv_raw(wait).map(|m| (m, None)),
        };
        match r {
            Ok((m, ack)) => Got::Msg(Lent(m), ack, sub.held_deliveries().unwrap_or(1)),
            Err(e) => Got::Err(e),
        }
    }

    /// Receives: `timeout` None waits forever, 0 does not wait. `lagged`:
    /// report a loss as shmq.Lagged (recv) or only on the message
    /// (iteration).
    fn receive(&self, py: Python<'_>, timeout: Option<f64>, lagged: bool) -> PyResult<PyMessage> {
        if self.shared.mode == Mode::Copy {
            if let Some(m) = lock(&self.stash).take() {
                return Ok(m);
            }
        }
        let deadline = deadline(timeout)?;
        if self.shared.mode == Mode::Group {
            self.end_group_message()?;
        }
        // Fast path with the GIL held: a message is usually waiting.
        let mut got = None;
        if let Ok(mut sub) = self.shared.sub.try_lock() {
            match Self::take(&self.shared, &mut sub, Wait::Now) {
                Got::Err(RecvError::Empty) => {}
                g => got = Some(g),
            }
        }
        let got = match got {
            Some(g) => g,
            None => {
                let shared = &*self.shared;
                let r = sliced(py, deadline, |wait| {
                    let g = {
                        let mut sub = lock(&shared.sub);
                        Self::take(shared, &mut sub, wait)
                    };
                    shared.settle();
                    match g {
                        Got::Err(RecvError::Empty | RecvError::Timeout) => Ok(None),
                        g => Ok::<_, ()>(Some(g)),
                    }
                })?;
                match r {
                    Ok(Some(g)) => g,
                    _ => Got::Err(if timeout == Some(0.0) { RecvError::Empty } else { RecvError::Timeout }),
                }
            }
        };
        self.shared.settle();
        match got {
            Got::Err(e) => Err(errors::recv(py, e)),
            Got::Msg(Lent(raw), ack, deliveries) => {
                let body = match (self.shared.mode, ack) {
                    (Mode::Ahead, Some(a)) => Body::Ahead(a),
                    (Mode::Group, _) => Body::Group,
                    _ => Body::Copy,
                };
                let msg = PyMessage::new(self.shared.clone(), &raw, body, deliveries);
                if self.shared.mode == Mode::Group {
                    lock(&self.shared.ledger).group_held = Some(msg.state());
                }
                if self.shared.mode == Mode::Ahead {
                    if let Some(a) = ack {
                        lock(&self.shared.ledger).held.push_back((a, false));
                    }
                }
                if lagged && raw.lost > 0 {
                    *lock(&self.stash) = Some(msg);
                    return Err(errors::lagged(py, raw.lost));
                }
                Ok(msg)
            }
        }
    }

    /// Reads the subscriber (waiting for a receive's slice to end, GIL
    /// released), then publishes a release deferred meanwhile.
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&Subscriber) -> T + Send) -> T {
        let shared = &*self.shared;
        let v = py.allow_threads(|| f(&lock(&shared.sub)));
        shared.settle();
        v
    }

    /// Group member: the message it holds ends before the next receive,
    /// which the library makes release it. Refused while a view of it is
    /// alive.
    fn end_group_message(&self) -> PyResult<()> {
        let mut l = lock(&self.shared.ledger);
        if let Some(st) = &l.group_held {
            st.check_no_views("receive the next message of a consumer group member")?;
            st.mark_released();
        }
        l.group_held = None;
        Ok(())
    }
}

#[pymethods]
impl PySubscriber {
    /// Receives the next message, waiting forever or `timeout` seconds
    /// (then shmq.Timeout). shmq.Closed at the end of a closed stream;
    /// shmq.Lagged (with `count`) when an Overwrite producer lapped this
    /// subscriber: the next recv returns the oldest message still held.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyMessage> {
        self.receive(py, timeout, true)
    }

    /// Receives without waiting: shmq.Empty if no message is waiting.
    fn try_recv(&self, py: Python<'_>) -> PyResult<PyMessage> {
        self.receive(py, Some(0.0), true)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Iteration waits for each message and stops at the end of a closed
    /// stream. Losses are not raised; each message's `lost` says how many
    /// were lost just before it (and `sub.lost` counts them all).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyMessage>> {
        match self.receive(py, None, false) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_instance_of::<errors::Closed>(py) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Messages received so far.
    #[getter]
    fn received(&self, py: Python<'_>) -> u64 {
        self.read(py, |s| s.received())
    }

    /// Messages lost to overwriting so far (Overwrite topics).
    #[getter]
    fn lost(&self, py: Python<'_>) -> u64 {
        self.read(py, |s| s.lost())
    }

    /// Position of the next message this subscriber reads.
    #[getter]
    fn position(&self, py: Python<'_>) -> u64 {
        self.read(py, |s| s.position())
    }

    /// Position the producer sees: the first message not yet released.
    #[getter]
    fn released_position(&self, py: Python<'_>) -> u64 {
        self.read(py, |s| s.released_position())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let kind = match self.shared.mode {
            Mode::Ahead => "block",
            Mode::Group => "group",
            Mode::Copy => "overwrite",
        };
        format!("Subscriber({kind}, position={})", self.position(py))
    }
}
