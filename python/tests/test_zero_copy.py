"""Reads are views of the topic's mapping, not copies."""

import os

import numpy as np

import shmq


def mapping_of(path):
    """The address range this process maps the topic file at (found by
    inode: a topic is created under a temporary name, then linked)."""
    inode = str(os.stat(path).st_ino)
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[4] == inode:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                return lo, hi
    raise AssertionError(f"{path} is not mapped")


def test_a_numpy_view_is_inside_the_topic_mapping(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 20, max_message=64 << 10)
    sub, p = t.subscribe(), t.producer()
    batch = np.arange(16 << 10, dtype=np.float32)  # 64 KiB
    p.publish(batch)
    msg = sub.recv(timeout=1)
    view = np.frombuffer(msg, dtype=np.float32)
    lo, hi = mapping_of(t.path)
    addr = view.__array_interface__["data"][0]
    assert lo <= addr and addr + view.nbytes <= hi
    assert view.base is not None and not view.flags.writeable and not view.flags.owndata
    assert np.array_equal(view, batch)


def test_a_grant_is_written_in_place(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 20, max_message=64 << 10)
    sub, p = t.subscribe(), t.producer()
    g = p.reserve(4096)
    view = np.frombuffer(g, dtype=np.uint32)
    lo, hi = mapping_of(t.path)
    assert lo <= view.__array_interface__["data"][0] < hi and view.flags.writeable
    view[:] = np.arange(1024, dtype=np.uint32)
    del view
    g.commit()
    msg = sub.recv(timeout=1)
    assert np.array_equal(np.frombuffer(msg, dtype=np.uint32), np.arange(1024, dtype=np.uint32))


def test_overwrite_messages_are_copies_that_stay_valid(topic_dir):
    # Overwrite subscribers receive copies (the producer may lap them):
    # each message owns its bytes, so a kept one survives the lap.
    t = shmq.Topic.create("o", dir=topic_dir, capacity=4096, max_message=256, policy="overwrite")
    sub, p = t.subscribe(), t.producer()
    p.publish(b"first")
    first = sub.recv(timeout=1)
    for _ in range(100):
        p.publish(bytes(200))
    assert bytes(first) == b"first"
