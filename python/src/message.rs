//! `shmq.Message`: a received message, a read-only buffer over its payload
//! (in the ring on Block topics: `memoryview(msg)` and
//! `numpy.frombuffer(msg, dtype)` read it in place).
//!
//! Lifetime, as Python's `mmap` does it: a message is released by
//! `release()`, by leaving a `with` block, or when the message and every
//! view of it are gone. Releasing while a view is still exported raises
//! `BufferError`, so no view can outlive the bytes it shows. Until it is
//! released, a message of a Block topic keeps its bytes (and every later
//! message's) from being overwritten: a view kept alive holds the producer
//! back once the ring is full.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmq::{Ack, RawMessage};

use crate::buffer::export;
use crate::errors;
use crate::producer::lock;
use crate::subscriber::Shared;

/// Whether a message is released, and how many views of it are exported.
/// Both change only with the GIL held, which orders them (Relaxed).
#[derive(Debug, Default)]
pub struct MsgState {
    exports: AtomicUsize,
    released: AtomicBool,
}

impl MsgState {
    /// BufferError if a view is exported (`what` could not be done).
    pub fn check_no_views(&self, what: &str) -> PyResult<()> {
        match self.exports.load(Relaxed) {
            0 => Ok(()),
            n => Err(PyBufferError::new_err(format!(
                "cannot {what}: {n} view(s) of the message (memoryview, numpy array) still exported; release them first"
            ))),
        }
    }

    /// Marks the message released; whether it was not already.
    pub fn mark_released(&self) -> bool {
        !self.released.swap(true, Relaxed)
    }
}

/// How a message goes back to its subscriber.
#[derive(Debug)]
pub enum Body {
    /// Read ahead in the ring: released in order through its ack.
    Ahead(Ack),
    /// A consumer group member's one held message.
    Group,
    /// A copy (Overwrite), owned by the message.
    Copy,
}

/// A received message: a read-only buffer over its payload, with its
/// metadata. Release it with `release()` or `with msg:`, or let it go.
#[derive(Debug)]
#[pyclass(module = "shmq", name = "Message", frozen)]
pub struct PyMessage {
    shared: Arc<Shared>,
    state: Arc<MsgState>,
    body: Body,
    ptr: usize,
    len: usize,
    /// `Copy`: the payload `ptr` points into; only kept, never read.
    _owned: Option<Box<[u8]>>,
    seq: u64,
    position: u64,
    timestamp_ns: u64,
    msg_type: u32,
    lost: u64,
    deliveries: u32,
}

impl PyMessage {
    pub fn new(shared: Arc<Shared>, raw: &RawMessage, body: Body, deliveries: u32) -> PyMessage {
        // SAFETY: the library lent `raw.len` readable bytes at `raw.data`,
        // valid until released (Ahead, Group: we hold the subscriber, and so
        // the mapping, through `shared`) or the next receive (Copy: copied
        // here, at once).
        let payload = || unsafe { std::slice::from_raw_parts(raw.data, raw.len) };
        let (ptr, owned) = match body {
            Body::Copy => {
                let b: Box<[u8]> = payload().into();
                (b.as_ptr() as usize, Some(b))
            }
            _ => (raw.data as usize, None),
        };
        PyMessage {
            shared,
            state: Arc::new(MsgState::default()),
            body,
            ptr,
            len: raw.len,
            _owned: owned,
            seq: raw.seq,
            position: raw.position,
            timestamp_ns: raw.timestamp_ns,
            msg_type: raw.msg_type,
            lost: raw.lost,
            deliveries,
        }
    }

    pub fn state(&self) -> Arc<MsgState> {
        self.state.clone()
    }

    /// Gives the message back to its subscriber (once).
    fn give_back(&self) {
        if !self.state.mark_released() {
            return;
        }
        match self.body {
            Body::Ahead(ack) => self.shared.release_ahead(ack),
            Body::Group => {
                let mine = {
                    let mut l = lock(&self.shared.ledger);
                    let mine = l.group_held.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.state));
                    if mine {
                        l.group_held = None;
                    }
                    mine
                };
                if mine {
                    lock(&self.shared.sub).release_raw();
                }
            }
            Body::Copy => {}
        }
    }

    fn payload(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: see `new`: `len` bytes at `ptr`, valid while not
        // released (callers check) or owned by `_owned`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    fn check_live(&self) -> PyResult<()> {
        if self.state.released.load(Relaxed) {
            return Err(errors::Error::new_err("this message was released: its bytes may be overwritten"));
        }
        Ok(())
    }
}

#[pymethods]
impl PyMessage {
    /// Releases the message: its bytes may be overwritten from now on.
    /// BufferError while a view of it is exported. Releasing twice is
    /// harmless.
    fn release(&self) -> PyResult<()> {
        self.state.check_no_views("release a message")?;
        self.give_back();
        Ok(())
    }

    /// Consumer group member with a dead-letter topic: moves this message
    /// there at once (marked rejected) and releases it.
    fn reject(&self, py: Python<'_>) -> PyResult<()> {
        if !matches!(self.body, Body::Group) {
            return Err(errors::InvalidArgument::new_err(
                "reject() is for messages of a consumer group member (subscribe_group with dead_letter=)",
            ));
        }
        self.check_live()?;
        self.state.check_no_views("reject a message")?;
        let shared = &*self.shared;
        let r = py.allow_threads(|| lock(&shared.sub).reject_raw());
        // Moved, or put back (the next receive returns it again): this
        // object no longer holds it either way.
        self.state.mark_released();
        lock(&self.shared.ledger).group_held = None;
        match r {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(errors::reject(e)),
            None => Err(errors::Error::new_err("this message is no longer held")),
        }
    }

    /// A copy of the payload as bytes.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.check_live()?;
        Ok(PyBytes::new(py, self.payload()))
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// Sequence number (per topic, from 0).
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }
    /// Absolute byte position of the message in the topic.
    #[getter]
    fn position(&self) -> u64 {
        self.position
    }
    /// Publish time, CLOCK_MONOTONIC nanoseconds (0 without timestamps).
    #[getter]
    fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    /// User type given at publish.
    #[getter]
    fn r#type(&self) -> u32 {
        self.msg_type
    }
    /// How many times it was delivered (more than 1 after a consumer group
    /// redelivered it).
    #[getter]
    fn deliveries(&self) -> u32 {
        self.deliveries
    }
    /// Messages lost just before this one (Overwrite).
    #[getter]
    fn lost(&self) -> u64 {
        self.lost
    }
    /// Whether it was released.
    #[getter]
    fn released(&self) -> bool {
        self.state.released.load(Relaxed)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.release()?;
        Ok(false)
    }

    /// # Safety
    /// Called by CPython with a view to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let this = slf.get();
        if this.state.released.load(Relaxed) {
            return Err(PyBufferError::new_err("this message was released: its bytes may be overwritten"));
        }
        // SAFETY: the payload stays valid and unwritten while the message
        // is not released, which is refused while an export is counted;
        // the view keeps the message, and so the mapping, alive. Read-only.
        unsafe { export(slf.as_any(), view, this.ptr as *mut u8, this.len, true, flags, &this.state.exports) }
    }

    /// # Safety
    /// Called by CPython when a view of this message is released.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        // Relaxed: with the GIL held, as the export.
        self.state.exports.fetch_sub(1, Relaxed);
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(seq={}, len={}, type={}, released={})",
            self.seq,
            self.len,
            self.msg_type,
            self.state.released.load(Relaxed)
        )
    }
}

impl Drop for PyMessage {
    fn drop(&mut self) {
        // No view can be alive: each holds a reference to the message.
        self.give_back();
    }
}
