"""shmq: a lock-free shared-memory message queue for processes on one Linux host.

A topic is a ring buffer in a file (default directory ``/dev/shm/shmq``, or
``$SHMQ_DIR``) that every process using it maps. A producer writes each
message once; every subscriber reads it in place through its own cursor.
The same topics are used from Rust, C, C++, the ``shmq`` command line and
Python.

Quick start::

    import shmq, numpy as np

    topic = shmq.Topic.open_or_create("frames", capacity=64 << 20, max_message=1 << 20)
    sub = topic.subscribe()                    # in one process
    producer = topic.producer()                # in another
    producer.publish(np.arange(1024, dtype=np.float32))
    with sub.recv(timeout=1.0) as msg:         # zero-copy: a view of the ring
        batch = np.frombuffer(msg, dtype=np.float32)
        print(batch.sum())
        del batch                              # release views before the message

Messages are zero-copy on Block topics: ``memoryview(msg)`` and
``numpy.frombuffer(msg, ...)`` read the ring in place. A message is
released by ``msg.release()``, by leaving ``with msg:``, or when it and
every view of it are gone; until then its bytes stay in the ring, so views
kept alive hold a Block producer back once the ring is full. Releasing
while a view is exported raises ``BufferError``.

Blocking calls (``recv``, ``publish``, ``reserve``) release the GIL and
return to Python for signals every 50 ms, so Ctrl-C interrupts them.

Errors are subclasses of :class:`shmq.Error`: ``Full``, ``Empty``,
``Timeout``, ``Lagged`` (with ``count``), ``Corrupt``, ``Closed``,
``Evicted``, ``TooLarge``, ``NotFound``, ``AlreadyExists``,
``Incompatible``, ``Busy``, ``PermissionDenied``, ``InvalidArgument``.
"""

from ._shmq import (
    AlreadyExists,
    Busy,
    Closed,
    Corrupt,
    Empty,
    Error,
    Evicted,
    Full,
    Grant,
    Incompatible,
    InvalidArgument,
    Lagged,
    Message,
    NotFound,
    PermissionDenied,
    Producer,
    Subscriber,
    TooLarge,
    Timeout,
    Topic,
    __version__,
)

__all__ = [
    "AlreadyExists",
    "Busy",
    "Closed",
    "Corrupt",
    "Empty",
    "Error",
    "Evicted",
    "Full",
    "Grant",
    "Incompatible",
    "InvalidArgument",
    "Lagged",
    "Message",
    "NotFound",
    "PermissionDenied",
    "Producer",
    "Subscriber",
    "TooLarge",
    "Timeout",
    "Topic",
    "__version__",
]
