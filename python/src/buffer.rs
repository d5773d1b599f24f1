//! The buffer protocol, both ways: reading any bytes-like object a caller
//! publishes ([`Input`]), and exporting ring memory as a Python buffer
//! ([`export`]) from messages and grants.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// A contiguous byte view of any object with the buffer protocol (bytes,
/// bytearray, memoryview, a C-contiguous numpy array), released on drop.
pub struct Input {
    view: Box<ffi::Py_buffer>,
}

// SAFETY: the exporter keeps the memory valid until `PyBuffer_Release`
// (in `Drop`, which takes the GIL); the pointer is only read meanwhile,
// from whichever thread, as CPython's own I/O does with the GIL released.
unsafe impl Send for Input {}
// SAFETY: as for Send: shared access only reads the exported bytes.
unsafe impl Sync for Input {}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("len", &self.view.len).finish()
    }
}

impl Input {
    /// Asks `obj` for a simple (contiguous, unformatted) buffer: a
    /// `BufferError` if it cannot give one, a `TypeError` if it has none.
    pub fn get(obj: &Bound<'_, PyAny>) -> PyResult<Input> {
        // SAFETY: `Py_buffer` is a plain C struct; all-zero is its unfilled state.
        let mut view: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `obj` is a live object (we hold the GIL through the
        // Bound); `view` points to writable storage for the struct.
        let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, ffi::PyBUF_SIMPLE) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok(Input { view })
    }

    /// The exported bytes.
    pub fn bytes(&self) -> &[u8] {
        let len = self.view.len.max(0) as usize;
        if len == 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: a filled simple buffer is `len` contiguous readable bytes
        // at `buf`, valid until released (in Drop, after this borrow).
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, len) }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        Python::with_gil(|_| {
            // SAFETY: `view` was filled by a successful PyObject_GetBuffer
            // and is released exactly once, with the GIL held.
            unsafe { ffi::PyBuffer_Release(&mut *self.view) }
        });
    }
}

/// Fills `view` with a one-dimensional byte buffer over `len` bytes at
/// `ptr`, exported by `owner` (which the view keeps alive), and counts the
/// export in `exports`.
///
/// # Safety
/// `view` is the pointer CPython passed to `__getbuffer__`; `ptr..ptr+len`
/// stays valid (and, if not `readonly`, writable) while `owner` lives and
/// `exports` is non-zero.
pub unsafe fn export(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    ptr: *mut u8,
    len: usize,
    readonly: bool,
    flags: c_int,
    exports: &AtomicUsize,
) -> PyResult<()> {
    if view.is_null() {
        return Err(PyBufferError::new_err("no buffer view to fill"));
    }
    let len = isize::try_from(len).map_err(|_| PyBufferError::new_err("buffer too large"))?;
    // SAFETY: per this function's contract; PyBuffer_FillInfo checks
    // `flags` (refusing a writable request on read-only memory) and takes
    // a reference to `owner` for the view.
    let rc = unsafe { ffi::PyBuffer_FillInfo(view, owner.as_ptr(), ptr.cast(), len, c_int::from(readonly), flags) };
    if rc != 0 {
        return Err(PyErr::fetch(owner.py()));
    }
    // Relaxed: every export and release runs with the GIL held, which
    // orders them.
    exports.fetch_add(1, Relaxed);
    Ok(())
}
