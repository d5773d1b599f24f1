//! The Python exceptions, one small hierarchy under `shmq.Error`, and the
//! mapping from each library error to one of them. The message is always
//! the library's own (`Display`), so Python users read what Rust and C
//! users read.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use shmq::{OpenError, ProducerError, PublishError, RecvError, RejectError, SubscribeError};

create_exception!(shmq, Error, PyException, "Base of every shmq error.");
create_exception!(shmq, Full, Error, "No room in a Block topic (try_publish, or a publish timeout passed).");
create_exception!(shmq, Empty, Error, "try_recv: no message is waiting.");
create_exception!(shmq, Timeout, Error, "The timeout passed with no message (recv) or no room (publish).");
create_exception!(
    shmq,
    Lagged,
    Error,
    "Overwrite topic: the producer lapped this subscriber; `count` messages were lost. The next recv returns the \
     oldest message still held."
);
create_exception!(shmq, Corrupt, Error, "The topic holds a value no correct producer writes.");
create_exception!(
    shmq,
    Closed,
    Error,
    "The stream is closed and every message published before the close was received."
);
create_exception!(shmq, Evicted, Error, "This subscriber's slot was reclaimed; subscribe again.");
create_exception!(shmq, TooLarge, Error, "The message is larger than the topic's max_message.");
create_exception!(shmq, NotFound, Error, "No such topic.");
create_exception!(shmq, AlreadyExists, Error, "The topic already exists.");
create_exception!(shmq, Incompatible, Error, "The topic exists with other settings, or another layout version.");
create_exception!(
    shmq,
    Busy,
    Error,
    "Taken by a live process: the producer, a durable name, a group in use, or every subscriber slot."
);
create_exception!(shmq, PermissionDenied, Error, "Not allowed: file permissions, a read-only handle.");
create_exception!(shmq, InvalidArgument, Error, "A bad name, option or value.");

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("Full", py.get_type::<Full>())?;
    m.add("Empty", py.get_type::<Empty>())?;
    m.add("Timeout", py.get_type::<Timeout>())?;
    m.add("Lagged", py.get_type::<Lagged>())?;
    m.add("Corrupt", py.get_type::<Corrupt>())?;
    m.add("Closed", py.get_type::<Closed>())?;
    m.add("Evicted", py.get_type::<Evicted>())?;
    m.add("TooLarge", py.get_type::<TooLarge>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("AlreadyExists", py.get_type::<AlreadyExists>())?;
    m.add("Incompatible", py.get_type::<Incompatible>())?;
    m.add("Busy", py.get_type::<Busy>())?;
    m.add("PermissionDenied", py.get_type::<PermissionDenied>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    Ok(())
}

pub fn open(e: OpenError) -> PyErr {
    let msg = e.to_string();
    match e {
        OpenError::InvalidName { .. } | OpenError::InvalidOptions(_) => InvalidArgument::new_err(msg),
        OpenError::NotFound { .. } => NotFound::new_err(msg),
        OpenError::AlreadyExists { .. } => AlreadyExists::new_err(msg),
        OpenError::Incompatible { .. } | OpenError::VersionMismatch { .. } | OpenError::NotATopic { .. } => {
            Incompatible::new_err(msg)
        }
        OpenError::Corrupt { .. } => Corrupt::new_err(msg),
        OpenError::PermissionDenied(_) | OpenError::UnsafeDirectory { .. } => PermissionDenied::new_err(msg),
        _ => Error::new_err(msg),
    }
}

pub fn producer(e: ProducerError) -> PyErr {
    let msg = e.to_string();
    match e {
        ProducerError::Busy { .. } => Busy::new_err(msg),
        ProducerError::ReadOnly => PermissionDenied::new_err(msg),
        _ => Error::new_err(msg),
    }
}

pub fn publish(e: PublishError) -> PyErr {
    let msg = e.to_string();
    match e {
        PublishError::TooLarge { .. } | PublishError::CommitTooLarge { .. } => TooLarge::new_err(msg),
        PublishError::Full => Full::new_err(msg),
        PublishError::Reserved => Busy::new_err(msg),
        PublishError::InvalidType(_) | PublishError::Unaligned { .. } => InvalidArgument::new_err(msg),
        _ => Error::new_err(msg),
    }
}

pub fn subscribe(e: SubscribeError) -> PyErr {
    let msg = e.to_string();
    match e {
        SubscribeError::NoFreeSlot { .. } | SubscribeError::NameTaken { .. } | SubscribeError::GroupInUse { .. } => {
            Busy::new_err(msg)
        }
        SubscribeError::ReadOnly => PermissionDenied::new_err(msg),
        SubscribeError::InvalidName(_) | SubscribeError::GroupNeedsBlock | SubscribeError::NoTimestamps => {
            InvalidArgument::new_err(msg)
        }
        SubscribeError::GroupSettings { .. } => Incompatible::new_err(msg),
        _ => Error::new_err(msg),
    }
}

pub fn recv(py: Python<'_>, e: RecvError) -> PyErr {
    let msg = e.to_string();
    match e {
        RecvError::Empty => Empty::new_err(msg),
        RecvError::Timeout => Timeout::new_err(msg),
        RecvError::Lagged(n) => lagged(py, n),
        RecvError::Corrupt(_) => Corrupt::new_err(msg),
        RecvError::Evicted => Evicted::new_err(msg),
        RecvError::Closed => Closed::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// `shmq.Lagged` with its `count` attribute.
pub fn lagged(py: Python<'_>, n: u64) -> PyErr {
    let err = Lagged::new_err(RecvError::Lagged(n).to_string());
    // Setting an attribute on a fresh exception instance only fails on
    // memory exhaustion; the exception still carries its message then.
    let _ = err.value(py).setattr("count", n);
    err
}

pub fn reject(e: RejectError) -> PyErr {
    InvalidArgument::new_err(e.to_string())
}
