//! `shmq.Topic`: create, open and inspect topics, and make producers and
//! subscribers of them.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use shmq::{GroupOptions, Options, Policy, Start, Topic};

use crate::errors;
use crate::producer::PyProducer;
use crate::subscriber::PySubscriber;

/// A topic: a named ring buffer in a file, mapped by every process that
/// uses it.
///
/// Made with `Topic.create`, `Topic.open` or `Topic.open_or_create`. The
/// mapping stays alive while the topic, or any producer, subscriber or
/// message made from it, is alive.
#[derive(Debug)]
#[pyclass(module = "shmq", name = "Topic", frozen)]
pub struct PyTopic {
    inner: Topic,
}

fn policy(p: &str) -> PyResult<Policy> {
    match p {
        "block" => Ok(Policy::Block),
        "overwrite" => Ok(Policy::Overwrite),
        _ => Err(errors::InvalidArgument::new_err(format!("policy must be \"block\" or \"overwrite\", not {p:?}"))),
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Block => "block",
        Policy::Overwrite => "overwrite",
    }
}

/// The keyword arguments `create`, `open` and `open_or_create` take.
const OPTION_NAMES: &str =
    "capacity, max_message, policy, multi_producer, timestamps, dir, max_subscribers, close_on_exit";

/// The options the keyword arguments set (the others keep the library's
/// defaults on create, and are not checked on open).
fn options(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut o = Options::new();
    let Some(kwargs) = kwargs else {
        return Ok(o);
    };
    for (k, v) in kwargs.iter() {
        let key: String = k.extract()?;
        if v.is_none() {
            continue;
        }
        o = match key.as_str() {
            "capacity" => o.capacity(v.extract()?),
            "max_message" => o.max_message(v.extract()?),
            "policy" => o.policy(policy(&v.extract::<String>()?)?),
            "multi_producer" => o.multi_producer(v.extract()?),
            "timestamps" => o.timestamps(v.extract()?),
            "dir" => o.dir(v.extract::<PathBuf>()?),
            "max_subscribers" => o.max_subscribers(v.extract()?),
            "close_on_exit" => o.close_on_exit(v.extract()?),
            _ => {
                return Err(errors::InvalidArgument::new_err(format!(
                    "unknown topic option {key:?}: the options are {OPTION_NAMES}"
                )))
            }
        };
    }
    Ok(o)
}

/// Opens or creates with `how`; opening waits (briefly, GIL released) for
/// a topic another process is creating.
fn open_with(
    py: Python<'_>,
    name: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
    how: fn(&str, &Options) -> Result<Topic, shmq::OpenError>,
) -> PyResult<PyTopic> {
    let o = options(kwargs)?;
    let t = py.allow_threads(|| how(name, &o)).map_err(errors::open)?;
    Ok(PyTopic { inner: t })
}

fn start(s: &str) -> PyResult<Start> {
    match s {
        "newest" => Ok(Start::Newest),
        "oldest" => Ok(Start::Oldest),
        _ => Err(errors::InvalidArgument::new_err(format!("start must be \"newest\" or \"oldest\", not {s:?}"))),
    }
}

#[pymethods]
impl PyTopic {
    /// Creates topic `name` (shmq.AlreadyExists if it exists). Keyword
    /// options: capacity, max_message, policy ("block" or "overwrite"),
    /// multi_producer, timestamps, dir, max_subscribers, close_on_exit;
    /// unset ones take the library's defaults (a 1 MiB ring, 64 KiB
    /// max_message, "block", one producer, timestamps on, the directory
    /// $SHMQ_DIR or /dev/shm/shmq).
    #[staticmethod]
    #[pyo3(signature = (name, **options))]
    fn create(py: Python<'_>, name: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<PyTopic> {
        open_with(py, name, options, Topic::create)
    }

    /// Opens topic `name` (shmq.NotFound if it does not exist). Options
    /// given are checked against the topic (shmq.Incompatible).
    #[staticmethod]
    #[pyo3(signature = (name, **options))]
    fn open(py: Python<'_>, name: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<PyTopic> {
        open_with(py, name, options, Topic::open)
    }

    /// Opens topic `name`, creating it with these options if it is missing.
    #[staticmethod]
    #[pyo3(signature = (name, **options))]
    fn open_or_create(py: Python<'_>, name: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<PyTopic> {
        open_with(py, name, options, Topic::open_or_create)
    }

    /// Removes topic `name` (its file; processes that have it mapped keep
    /// their mapping).
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None))]
    fn unlink(name: &str, dir: Option<PathBuf>) -> PyResult<()> {
        let dir = dir.unwrap_or_else(shmq::default_dir);
        Topic::unlink_in(&dir, name).map_err(errors::open)
    }

    /// The topic's producer (shmq.Busy if another live one holds a
    /// single-producer topic).
    fn producer(&self) -> PyResult<PyProducer> {
        Ok(PyProducer::new(self.inner.producer().map_err(errors::producer)?))
    }

    /// A subscriber that receives messages published from now on.
    fn subscribe(&self) -> PyResult<PySubscriber> {
        PySubscriber::new(self.inner.subscribe().map_err(errors::subscribe)?)
    }

    /// A subscriber that starts at the oldest message the ring still holds.
    fn subscribe_from_oldest(&self) -> PyResult<PySubscriber> {
        PySubscriber::new(self.inner.subscribe_from_oldest().map_err(errors::subscribe)?)
    }

    /// The durable subscriber `name`: its cursor lives in the topic, so a
    /// process that subscribes again with the name resumes at the first
    /// message it had not released. Its first subscription starts at
    /// `start` ("newest" or "oldest").
    #[pyo3(signature = (name, *, start="newest"))]
    fn subscribe_durable(&self, name: &str, start: &str) -> PyResult<PySubscriber> {
        let sub = match self::start(start)? {
            Start::Newest => self.inner.subscribe_durable(name),
            s => self.inner.subscribe_durable_from(name, s),
        };
        PySubscriber::new(sub.map_err(errors::subscribe)?)
    }

    /// Removes the durable subscriber `name`. False if there is none.
    fn unsubscribe_durable(&self, name: &str) -> PyResult<bool> {
        self.inner.unsubscribe_durable(name).map_err(errors::subscribe)
    }

    /// Joins consumer group `group`: each message goes to one member. A
    /// message delivered `max_deliveries` times without being released
    /// (its members died) moves to the topic `dead_letter` (made if
    /// missing and `create_dead_letter`); `msg.reject()` moves one at once.
    #[pyo3(signature = (group, *, max_deliveries=None, dead_letter=None, create_dead_letter=true))]
    fn subscribe_group(
        &self,
        group: &str,
        max_deliveries: Option<u32>,
        dead_letter: Option<&str>,
        create_dead_letter: bool,
    ) -> PyResult<PySubscriber> {
        let mut o = GroupOptions::new();
        if let Some(n) = max_deliveries {
            o = o.max_deliveries(n);
        }
        if let Some(d) = dead_letter {
            o = o.dead_letter_topic(d, create_dead_letter);
        }
        PySubscriber::new(self.inner.subscribe_group_with(group, &o).map_err(errors::subscribe)?)
    }

    /// Removes consumer group `group`. False if there is none.
    fn remove_group(&self, group: &str) -> PyResult<bool> {
        self.inner.remove_group(group).map_err(errors::subscribe)
    }

    /// Ends the stream: subscribers get shmq.Closed after the last message
    /// (until a producer publishes again).
    fn close_stream(&self) -> PyResult<()> {
        self.inner.close().map_err(errors::producer)
    }

    /// Everything `shmq info` shows, as a dict: settings, producer and
    /// subscriber positions, counters.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let json = serde_json::to_string(&self.inner.info())
            .map_err(|e| errors::Error::new_err(format!("topic info: {e}")))?;
        py.import("json")?.call_method1("loads", (json,))?.downcast_into::<PyDict>().map_err(PyErr::from)
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }
    #[getter]
    fn capacity(&self) -> u64 {
        self.inner.capacity()
    }
    #[getter]
    fn max_message(&self) -> usize {
        self.inner.max_message()
    }
    #[getter]
    fn policy(&self) -> &'static str {
        policy_name(self.inner.policy())
    }
    #[getter]
    fn multi_producer(&self) -> bool {
        self.inner.multi_producer()
    }

    fn __repr__(&self) -> String {
        format!(
            "Topic({:?}, capacity={}, max_message={}, policy={:?})",
            self.inner.name(),
            self.inner.capacity(),
            self.inner.max_message(),
            policy_name(self.inner.policy())
        )
    }
}
