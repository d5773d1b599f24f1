//! `shmq.Producer` and `shmq.Grant`: publishing copies of any bytes-like
//! object, or writing a message in place through a grant (zero-copy).

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmq::{BatchError, Producer, PublishError, Wait};

use crate::buffer::{export, Input};
use crate::errors;
use crate::wait::{deadline, sliced};

/// Locks a mutex; a panic elsewhere cannot leave a producer's state half
/// written (its methods do not unwind midway), so a poisoned lock is used
/// as is.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn outstanding() -> PyErr {
    errors::Busy::new_err("a reservation from reserve() is outstanding: commit or abort it first")
}

/// A topic's producer. Blocking calls release the GIL and are interrupted
/// by Ctrl-C.
#[derive(Debug)]
#[pyclass(module = "shmq", name = "Producer", frozen)]
pub struct PyProducer {
    inner: Arc<Mutex<Producer>>,
}

impl PyProducer {
    pub fn new(p: Producer) -> PyProducer {
        PyProducer { inner: Arc::new(Mutex::new(p)) }
    }
}

/// One message of a batch: a `bytes` object read in place (immutable,
/// and kept alive by this reference while the GIL is released), or any
/// other bytes-like object through the buffer protocol. The first is the
/// common case and costs no buffer request and no allocation.
enum Item<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(Input),
}

impl<'py> Item<'py> {
    fn get(obj: Bound<'py, PyAny>) -> PyResult<Item<'py>> {
        match obj.downcast_into::<PyBytes>() {
            Ok(b) => Ok(Item::Bytes(b)),
            Err(e) => Input::get(&e.into_inner()).map(Item::Buffer),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Item::Bytes(b) => b.as_bytes(),
            Item::Buffer(i) => i.bytes(),
        }
    }
}

/// A batch's error as the exception of its kind, with the count of
/// messages published before it as its `published` attribute.
fn batch_error(py: Python<'_>, e: BatchError) -> PyErr {
    let err = errors::publish(e.error);
    // An attribute on a fresh exception object of our own classes: it
    // cannot fail short of memory, and then the exception still says what
    // went wrong.
    let _ = err.value(py).setattr("published", e.published);
    err
}

/// One bounded publish: `Ok(None)` if the wait ended with no room.
fn publish_once(p: &mut Producer, data: &[u8], msg_type: u32, wait: Wait) -> Result<Option<()>, PublishError> {
    if wait == Wait::Now {
        return match p.try_publish_typed(msg_type, data) {
            Err(PublishError::Full) => Ok(None),
            r => r.map(Some),
        };
    }
    // Claim with a bounded wait, copy, commit: `publish_typed` with a timeout.
    match p.reserve_raw(data.len(), wait) {
        Err(PublishError::Full) => Ok(None),
        Err(e) => Err(e),
        Ok(None) => Ok(None), // a grant is outstanding: checked by the caller
        Ok(Some(ptr)) => {
            // SAFETY: `reserve_raw` returned `data.len()` writable bytes in
            // the mapping, ours until the commit below.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
            p.commit_raw(data.len(), msg_type).map(|_| Some(()))
        }
    }
}

#[pymethods]
impl PyProducer {
    /// Publishes a copy of `data` (any bytes-like object: bytes,
    /// bytearray, memoryview, a C-contiguous numpy array) with user type
    /// `type`. On a full Block topic it waits for room: forever, or
    /// `timeout` seconds (then shmq.Full).
    #[pyo3(signature = (data, *, timeout=None, r#type=0))]
    fn publish(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>, r#type: u32) -> PyResult<()> {
        let input = Input::get(data)?;
        let deadline = deadline(timeout)?;
        // Fast path with the GIL held: room is usually there.
        if let Ok(mut p) = self.inner.try_lock() {
            if p.has_reservation() {
                return Err(outstanding());
            }
            if publish_once(&mut p, input.bytes(), r#type, Wait::Now).map_err(errors::publish)?.is_some() {
                return Ok(());
            }
        }
        let inner = &self.inner;
        let input = &input;
        let r = sliced(py, deadline, |wait| {
            let mut p = lock(inner);
            if p.has_reservation() {
                return Err(None);
            }
            publish_once(&mut p, input.bytes(), r#type, wait).map_err(Some)
        })?;
        match r {
            Ok(Some(())) => Ok(()),
            Ok(None) => Err(errors::publish(PublishError::Full)),
            Err(None) => Err(outstanding()),
            Err(Some(e)) => Err(errors::publish(e)),
        }
    }

    /// Publishes copies of the bytes-like objects in `msgs` (any
    /// iterable), in order, with one claim and one commit per run of
    /// them: for small messages far cheaper per message than `publish`.
    /// Subscribers receive them one by one. Waits for room like publish,
    /// at most `timeout` seconds in all (0: only what fits now), and
    /// returns how many leading messages were published: all of them, or
    /// fewer when the time ran out. Other errors raise; the exception's
    /// `published` attribute says how many went out before it.
    #[pyo3(signature = (msgs, *, timeout=None))]
    fn publish_batch(&self, py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<usize> {
        let items = msgs.try_iter()?.map(|o| Item::get(o?)).collect::<PyResult<Vec<Item<'_>>>>()?;
        let views: Vec<&[u8]> = items.iter().map(Item::bytes).collect();
        let deadline = deadline(timeout)?;
        let mut done = 0;
        // Fast path with the GIL held: room is usually there.
        if let Ok(mut p) = self.inner.try_lock() {
            if p.has_reservation() {
                return Err(outstanding());
            }
            match p.try_publish_batch(&views) {
                Ok(n) => done = n,
                Err(e) => return Err(batch_error(py, e)),
            }
            if done == views.len() {
                return Ok(done);
            }
        }
        let inner = &self.inner;
        let views = &views;
        let done = &mut done;
        let r = sliced(py, deadline, |wait| {
            let mut p = lock(inner);
            if p.has_reservation() {
                return Err(None);
            }
            let rest = &views[*done..];
            let r = match wait {
                Wait::Now => p.try_publish_batch(rest),
                Wait::For(t) => p.publish_batch_timeout(rest, t),
                Wait::Forever => p.publish_batch(rest).map(|()| rest.len()),
            };
            match r {
                Ok(n) => {
                    *done += n;
                    Ok((*done == views.len()).then_some(()))
                }
                Err(e) => {
                    *done += e.published;
                    Err(Some(e.error))
                }
            }
        })?;
        let done = *done;
        match r {
            Ok(_) => Ok(done),
            Err(None) => Err(outstanding()),
            Err(Some(error)) => Err(batch_error(py, BatchError { published: done, error })),
        }
    }

    /// Publishes without waiting: shmq.Full if there is no room.
    #[pyo3(signature = (data, *, r#type=0))]
    fn try_publish(&self, py: Python<'_>, data: &Bound<'_, PyAny>, r#type: u32) -> PyResult<()> {
        self.publish(py, data, Some(0.0), r#type)
    }

    /// Claims `n` bytes in the ring and returns a Grant: a writable buffer
    /// (memoryview, numpy.frombuffer) over them. Write the message in
    /// place, then `grant.commit()`. Waits for room like publish.
    #[pyo3(signature = (n, *, timeout=None))]
    fn reserve(&self, py: Python<'_>, n: usize, timeout: Option<f64>) -> PyResult<PyGrant> {
        let deadline = deadline(timeout)?;
        let inner = &self.inner;
        let r = sliced(py, deadline, |wait| {
            let mut p = lock(inner);
            if p.has_reservation() {
                return Err(None);
            }
            match p.reserve_raw(n, wait) {
                Ok(Some(ptr)) => Ok(Some(ptr as usize)),
                Ok(None) => Err(None),
                Err(PublishError::Full) => Ok(None),
                Err(e) => Err(Some(e)),
            }
        })?;
        match r {
            Ok(Some(ptr)) => Ok(PyGrant {
                producer: self.inner.clone(),
                ptr,
                len: n,
                exports: AtomicUsize::new(0),
                done: AtomicBool::new(false),
            }),
            Ok(None) => Err(errors::publish(PublishError::Full)),
            Err(None) => Err(outstanding()),
            Err(Some(e)) => Err(errors::publish(e)),
        }
    }

    /// Ends the stream: subscribers get shmq.Closed after the last message.
    /// Publishing again reopens it.
    fn close_stream(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.allow_threads(|| lock(inner).close());
    }

    /// Largest message the topic accepts.
    #[getter]
    fn max_message(&self, py: Python<'_>) -> usize {
        let inner = &self.inner;
        py.allow_threads(|| lock(inner).max_message())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Producer(max_message={})", self.max_message(py))
    }
}

/// `n` bytes claimed in the ring by `Producer.reserve`, writable in place
/// through the buffer protocol. `commit(n)` publishes the first `n` bytes;
/// `abort()` (or dropping the grant uncommitted) publishes nothing. As a
/// context manager it commits on a clean exit and aborts on an exception.
/// Views must be released before commit or abort (BufferError otherwise).
#[derive(Debug)]
#[pyclass(module = "shmq", name = "Grant", frozen)]
pub struct PyGrant {
    producer: Arc<Mutex<Producer>>,
    ptr: usize,
    len: usize,
    exports: AtomicUsize,
    done: AtomicBool,
}

impl PyGrant {
    /// Checks the grant can end now, and marks it ended.
    fn finish(&self) -> PyResult<()> {
        // Relaxed: exports and ends run with the GIL held.
        if self.done.load(Relaxed) {
            return Err(errors::Error::new_err("this grant was already committed or aborted"));
        }
        if self.exports.load(Relaxed) > 0 {
            return Err(PyBufferError::new_err(
                "cannot end a grant while a view of it (memoryview, numpy array) is alive: release it first",
            ));
        }
        Ok(())
    }
}

#[pymethods]
impl PyGrant {
    /// Publishes the first `n` bytes (all of them by default) with user
    /// type `type`.
    #[pyo3(signature = (n=None, *, r#type=0))]
    fn commit(&self, n: Option<usize>, r#type: u32) -> PyResult<()> {
        self.finish()?;
        let n = n.unwrap_or(self.len);
        match lock(&self.producer).commit_raw(n, r#type) {
            Ok(_) => {
                self.done.store(true, Relaxed);
                Ok(())
            }
            // The claim stays outstanding: commit again or abort.
            Err(e @ (PublishError::CommitTooLarge { .. } | PublishError::InvalidType(_))) => Err(errors::publish(e)),
            Err(e) => {
                self.done.store(true, Relaxed);
                Err(errors::publish(e))
            }
        }
    }

    /// Abandons the claim: nothing is published.
    fn abort(&self) -> PyResult<()> {
        self.finish()?;
        self.done.store(true, Relaxed);
        lock(&self.producer).abort_raw();
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if self.done.load(Relaxed) {
            return Ok(false);
        }
        match exc_type {
            Some(t) if !t.is_none() => self.abort()?,
            _ => self.commit(None, 0)?,
        }
        Ok(false)
    }

    /// # Safety
    /// Called by CPython with a view to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let this = slf.get();
        if this.done.load(Relaxed) {
            return Err(PyBufferError::new_err("this grant was already committed or aborted"));
        }
        // SAFETY: the claim's `len` bytes at `ptr` are ours and writable
        // until commit or abort, which refuse while an export is counted;
        // the producer (and its mapping) lives as long as this grant.
        unsafe { export(slf.as_any(), view, this.ptr as *mut u8, this.len, false, flags, &this.exports) }
    }

    /// # Safety
    /// Called by CPython when a view of this grant is released.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        // Relaxed: with the GIL held, as the export.
        self.exports.fetch_sub(1, Relaxed);
    }

    fn __repr__(&self) -> String {
        format!("Grant(len={}, done={})", self.len, self.done.load(Relaxed))
    }
}

impl Drop for PyGrant {
    fn drop(&mut self) {
        if !*self.done.get_mut() {
            lock(&self.producer).abort_raw();
        }
    }
}
