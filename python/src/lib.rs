//! `shmq` for Python: the compiled module `shmq._shmq`, re-exported by the
//! `shmq` package (python/shmq/__init__.py).
//!
//! Module map: [`topic`] (Topic), [`producer`] (Producer, Grant),
//! [`subscriber`] (Subscriber and how its messages are released),
//! [`message`] (Message, the zero-copy buffer), [`buffer`] (the buffer
//! protocol both ways), [`wait`] (blocking without the GIL, interruptible),
//! [`errors`] (the exception hierarchy).

use pyo3::prelude::*;

mod buffer;
mod errors;
mod message;
mod producer;
mod subscriber;
mod topic;
mod wait;

/// Lock-free shared-memory message queue for processes on one Linux host.
#[pymodule]
fn _shmq(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<topic::PyTopic>()?;
    m.add_class::<producer::PyProducer>()?;
    m.add_class::<producer::PyGrant>()?;
    m.add_class::<subscriber::PySubscriber>()?;
    m.add_class::<message::PyMessage>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
