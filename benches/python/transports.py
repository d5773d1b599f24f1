"""The transports the Python benchmark compares, each in its natural idiom,
all carrying payloads (bytearrays for small messages, numpy uint64 arrays
for large ones) whose first and last words are the message's number.

Each transport has `channel(name)` returning an object with `sender()` and
`receiver()`, made in the process that uses them. A sender has
`send(arr)` (and maybe `finish()`, to flush before the process exits); a receiver has `recv()` returning any object with the buffer
protocol (the consumer views it with numpy: zero-copy where the transport
allows it).
"""

import ctypes
import multiprocessing as mp
import os

import numpy as np

import shmq


class Shmq:
    name = "shmq"

    def __init__(self, dir, size):
        self.dir, self.size = dir, size

    def channel(self, name):
        cap = 1 << 20 if self.size <= 4096 else 8 << 20  # as `shmq bench`
        shmq.Topic.create(name, dir=self.dir, capacity=cap, max_message=max(self.size, 64))
        return ShmqChannel(self.dir, name)


class ShmqChannel:
    def __init__(self, dir, name):
        self.dir, self.name = dir, name

    def sender(self):
        p = shmq.Topic.open(self.name, dir=self.dir).producer()
        return type("S", (), {"send": staticmethod(p.publish)})()

    def receiver(self):
        sub = shmq.Topic.open(self.name, dir=self.dir).subscribe()
        return type("R", (), {"recv": staticmethod(sub.recv)})()


class MpQueue:
    name = "multiprocessing.Queue"

    def __init__(self, dir, size):
        self.ctx = mp.get_context("fork")

    def channel(self, name):
        q = self.ctx.Queue(maxsize=1024)
        # put() pickles in a feeder thread later: send a snapshot (bytes).
        return _Pair(lambda: type("S", (), {"send": lambda self, a: q.put(bytes(a))})(),
                     lambda: type("R", (), {"recv": lambda self: q.get()})())


class MpPipe:
    name = "multiprocessing.Pipe"

    def __init__(self, dir, size):
        self.ctx = mp.get_context("fork")

    def channel(self, name):
        r, w = self.ctx.Pipe(duplex=False)
        return _Pair(lambda: type("S", (), {"send": lambda self, a: w.send_bytes(a)})(),
                     lambda: type("R", (), {"recv": lambda self: r.recv_bytes()})())


class Zmq:
    name = "pyzmq ipc://"
    # With both processes' main threads pinned (one CPU each), pyzmq's
    # stream stalled here: the consumer waited in poll for messages the
    # producer had sent and flushed. Unpinned, it runs.
    pinned = False

    def __init__(self, dir, size):
        self.dir = dir

    def channel(self, name):
        addr = f"ipc://{self.dir}/{name}.zmq"
        import zmq

        def sender():
            s = zmq.Context.instance().socket(zmq.PUSH)
            s.setsockopt(zmq.SNDHWM, 1024)
            s.connect(addr)

            def finish(self):
                # The process ends with os._exit: flush what is queued
                # (closing every socket of the process; term waits for them).
                zmq.Context.instance().destroy(linger=-1)

            return type("S", (), {"send": lambda self, a: s.send(a, copy=True), "finish": finish})()

        def receiver():
            s = zmq.Context.instance().socket(zmq.PULL)
            s.setsockopt(zmq.RCVHWM, 1024)
            s.bind(addr)
            return type("R", (), {"recv": lambda self: s.recv(copy=False).buffer})()

        return _Pair(sender, receiver, receiver_first=True)


class Iceoryx2:
    name = "iceoryx2 (Python)"

    def __init__(self, dir, size):
        self.size = size

    def channel(self, name):
        size = self.size
        svc_name = f"shmq-bench-{os.getpid()}-{name}"

        def service():
            import iceoryx2 as iox2

            iox2.set_log_level(iox2.LogLevel.Error)
            node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
            svc = (
                node.service_builder(iox2.ServiceName.new(svc_name))
                .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                .enable_safe_overflow(False)
                .subscriber_max_buffer_size(256)
                .open_or_create()
            )
            return iox2, node, svc

        def sender():
            iox2, node, svc = service()
            p = (
                svc.publisher_builder()
                .initial_max_slice_len(size)
                .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
                .create()
            )

            cache = []  # (the producer's buffer, its address): one entry

            def send(self, a, p=p, node=node, svc=svc):
                if isinstance(a, ctypes.Array):  # an echoed sample's view
                    src, n = ctypes.addressof(a), len(a)
                else:
                    if not cache or cache[0][0] is not a:
                        cache[:] = [(a, ctypes.addressof(ctypes.c_char.from_buffer(a)))]
                    src, n = cache[0][1], memoryview(a).nbytes
                s = p.loan_slice_uninit(n)
                ctypes.memmove(s.payload().data_ptr, src, n)
                s.assume_init().send()

            return type("S", (), {"send": send})()

        def receiver():
            iox2, node, svc = service()
            sub = svc.subscriber_builder().buffer_size(256).create()

            def recv(self, sub=sub, node=node, svc=svc):
                while True:  # iceoryx2 receives by polling (or a separate event service)
                    s = sub.receive()
                    if s is not None:
                        # A zero-copy view that keeps the sample (and so
                        # its memory) alive as long as the view.
                        pl = s.payload()
                        view = (ctypes.c_uint8 * pl.number_of_elements).from_address(pl.data_ptr)
                        view.sample = s
                        return view

            return type("R", (), {"recv": recv})()

        return _Pair(sender, receiver, receiver_first=True)


class _Pair:
    """A channel made before fork: its ends are built in the child that uses them."""

    def __init__(self, sender, receiver, receiver_first=False):
        self.sender, self.receiver, self.receiver_first = sender, receiver, receiver_first


ALL = [Shmq, MpQueue, MpPipe, Zmq, Iceoryx2]


def available():
    """The transports that import here (pyzmq and iceoryx2 are optional)."""
    out = []
    for t in ALL:
        try:
            if t is Zmq:
                import zmq  # noqa: F401
            if t is Iceoryx2:
                import iceoryx2  # noqa: F401
            out.append(t)
        except ImportError:
            pass
    return out
