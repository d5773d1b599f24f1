"""A message's bytes stay in the ring until it is released, and no view
can outlive them."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import shmq


@pytest.fixture
def block(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=4096, max_message=512)
    return t, t.subscribe(), t.producer()


def cursor(t):
    return t.info()["subscribers"][0]["cursor"]


def test_release_with_an_exported_view_raises(block):
    t, sub, p = block
    p.publish(b"abcdef")
    msg = sub.recv(timeout=1)
    view = memoryview(msg)
    with pytest.raises(BufferError, match="still exported"):
        msg.release()
    with pytest.raises(BufferError):
        with msg:
            pass
    assert not msg.released and view.tobytes() == b"abcdef"
    view.release()
    msg.release()
    assert msg.released and cursor(t) == sub.position
    with pytest.raises(BufferError, match="released"):
        memoryview(msg)
    with pytest.raises(shmq.Error, match="released"):
        msg.tobytes()
    msg.release()  # twice is harmless


def test_a_dropped_message_releases_and_views_keep_it(block):
    t, sub, p = block
    p.publish(b"one")
    p.publish(b"two")
    m1 = sub.recv(timeout=1)
    arr = np.frombuffer(m1, dtype=np.uint8)
    del m1  # the array still views it: not released
    m2 = sub.recv(timeout=1)
    assert cursor(t) == 0
    del m2  # released, but behind m1: the producer still sees 0
    assert cursor(t) == 0
    assert bytes(arr) == b"one"
    del arr  # the last view of m1: both are released, in order
    assert cursor(t) == sub.position > 0


def test_with_releases(block):
    t, sub, p = block
    p.publish(b"x")
    with sub.recv(timeout=1) as m:
        assert bytes(m) == b"x" and not m.released
    assert m.released and cursor(t) == sub.position


def test_a_kept_view_holds_a_block_producer_back(block):
    t, sub, p = block
    p.publish(bytes([7]) * 400)
    first = np.frombuffer(sub.recv(timeout=1), dtype=np.uint8)  # kept
    n = 0
    while True:
        try:
            p.try_publish(bytes(400))
        except shmq.Full:
            break
        n += 1
        sub.recv(timeout=1).release()  # everything else is released at once
    with pytest.raises(shmq.Full):
        p.publish(bytes(400), timeout=0.05)
    assert (first == 7).all()  # never overwritten
    del first
    p.publish(bytes(400), timeout=1)  # room again


def test_iteration_keeps_the_previous_message_valid(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16, max_message=512)
    sub, p = t.subscribe(), t.producer()
    for i in range(100):
        p.publish(np.full(16, i, dtype=np.int32))
    p.close_stream()
    arrays = [np.frombuffer(m, dtype=np.int32) for m in sub]  # every view kept
    assert [int(a[0]) for a in arrays] == list(range(100))
    assert all((a == i).all() for i, a in enumerate(arrays))
    assert cursor(t) == 0
    del arrays
    assert cursor(t) == sub.position


def test_a_group_member_holds_one_message_at_a_time(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    w = t.subscribe_group("g", max_deliveries=2, dead_letter="t.dead")
    p = t.producer()
    for i in range(3):
        p.publish(bytes([i]))
    m = w.recv(timeout=1)
    v = memoryview(m)
    with pytest.raises(BufferError):
        w.recv(timeout=1)
    v.release()
    m2 = w.recv(timeout=1)  # releases the first
    assert m.released and bytes(m2) == b"\x01" and m2.deliveries == 1
    m2.reject()  # to the dead-letter topic at once
    assert m2.released
    dead = shmq.Topic.open("t.dead", dir=topic_dir)
    assert dead.info()["published_messages"] == 1
    assert bytes(w.recv(timeout=1)) == b"\x02"


def test_reject_needs_a_group_member(block):
    t, sub, p = block
    p.publish(b"x")
    with pytest.raises(shmq.InvalidArgument, match="consumer group"):
        sub.recv(timeout=1).reject()


def test_a_dropped_grant_publishes_nothing(block):
    t, sub, p = block
    g = p.reserve(100)
    memoryview(g)[:5] = b"never"
    del g
    p.publish(b"after")
    assert bytes(sub.recv(timeout=1)) == b"after"


def test_a_grant_with_a_live_view_cannot_commit(block):
    t, sub, p = block
    g = p.reserve(8)
    arr = np.frombuffer(g, dtype=np.uint8)
    arr[:] = 3
    with pytest.raises(BufferError, match="view"):
        g.commit()
    del arr
    g.commit(4, type=9)
    m = sub.recv(timeout=1)
    assert bytes(m) == b"\x03" * 4 and m.type == 9


def test_a_durable_subscriber_that_dies_resumes_at_its_first_unreleased_message(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    p = t.producer()
    t.subscribe_durable("keeper")  # created; detached at once, it keeps its place
    for i in range(10):
        p.publish(bytes([i]))
    # A process reads all ten, keeps 3, 5 and 6 alive (views in a list),
    # releases the rest, and dies without cleaning up.
    code = textwrap.dedent(
        f"""
        import os, shmq
        t = shmq.Topic.open("t", dir={topic_dir!r})
        sub = t.subscribe_durable("keeper")
        kept = []
        for i in range(10):
            m = sub.recv(timeout=1)
            assert bytes(m) == bytes([i])
            if i in (3, 5, 6):
                kept.append(memoryview(m))
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    sub = t.subscribe_durable("keeper")
    assert [bytes(sub.recv(timeout=1)) for _ in range(7)] == [bytes([i]) for i in range(3, 10)]
