//! Blocking calls without the GIL, interruptible by signals.
//!
//! A blocking receive or publish waits in slices of [`SLICE`] with the GIL
//! released: other Python threads run meanwhile. Between slices the thread
//! takes the GIL back and runs pending signal handlers
//! (`PyErr_CheckSignals`), so Ctrl-C raises `KeyboardInterrupt` from a
//! blocked `recv()` or `publish()` within one slice. A message or room
//! that arrives mid-slice ends the wait at once (the library wakes the
//! futex); only signals wait for the slice's end.

use std::time::{Duration, Instant};

use pyo3::prelude::*;
use shmq::Wait;

use crate::errors;

/// Longest GIL-free wait between looks at pending signals.
pub const SLICE: Duration = Duration::from_millis(50);

/// When a wait of `timeout` seconds (`None`: forever) ends. Negative or
/// not-a-number timeouts are refused.
pub fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => {
            Err(errors::InvalidArgument::new_err(format!("timeout must be None or >= 0 seconds, not {t}")))
        }
        // Far enough in the future to be forever, short of overflowing.
        Some(t) => Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))),
    }
}

/// The wait for the next slice, or `None` once `deadline` has passed.
fn next_slice(deadline: Option<Instant>) -> Option<Wait> {
    match deadline {
        None => Some(Wait::For(SLICE)),
        Some(d) => {
            let left = d.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                None
            } else {
                Some(Wait::For(left.min(SLICE)))
            }
        }
    }
}

/// Calls `attempt` with the GIL released, one slice at a time, until it
/// returns `Ok(Some(_))` or an error, or `deadline` passes (`Ok(None)`).
/// `attempt(wait)` returns `Ok(None)` when its wait ended with nothing.
/// A signal handler that raises (Ctrl-C) ends the wait with its error.
pub fn sliced<T: Send, E: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(Wait) -> Result<Option<T>, E> + Send,
) -> PyResult<Result<Option<T>, E>> {
    loop {
        let Some(wait) = next_slice(deadline) else {
            return Ok(Ok(None));
        };
        match py.allow_threads(|| attempt(wait)) {
            Ok(None) => py.check_signals()?,
            done => return Ok(done),
        }
    }
}
