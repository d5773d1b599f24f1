"""Every shmq exception is reached, with the library's message."""

import os
from pathlib import Path

import pytest

import shmq


def test_the_hierarchy():
    for e in [
        shmq.Full, shmq.Empty, shmq.Timeout, shmq.Lagged, shmq.Corrupt, shmq.Closed, shmq.Evicted,
        shmq.TooLarge, shmq.NotFound, shmq.AlreadyExists, shmq.Incompatible, shmq.Busy,
        shmq.PermissionDenied, shmq.InvalidArgument,
    ]:
        assert issubclass(e, shmq.Error) and e.__module__ == "shmq"


def test_open_errors(topic_dir):
    with pytest.raises(shmq.NotFound, match="not found|no topic|does not exist"):
        shmq.Topic.open("missing", dir=topic_dir)
    shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    with pytest.raises(shmq.AlreadyExists):
        shmq.Topic.create("t", dir=topic_dir)
    with pytest.raises(shmq.Incompatible, match="capacity"):
        shmq.Topic.open("t", dir=topic_dir, capacity=1 << 17)
    for bad in ["", "../x", "a/b"]:
        with pytest.raises(shmq.InvalidArgument):
            shmq.Topic.create(bad, dir=topic_dir)
    with pytest.raises(shmq.InvalidArgument, match="policy"):
        shmq.Topic.create("p", dir=topic_dir, policy="sometimes")
    with pytest.raises(shmq.InvalidArgument, match="unknown topic option"):
        shmq.Topic.create("p", dir=topic_dir, capacty=1 << 16)


def test_a_corrupt_header_is_refused(topic_dir):
    t = shmq.Topic.create("c", dir=topic_dir, capacity=1 << 16)
    path = t.path
    del t
    with open(path, "r+b") as f:
        f.seek(24)  # the capacity field
        f.write((3000).to_bytes(8, "little"))  # not a power of two
    with pytest.raises(shmq.Corrupt):
        shmq.Topic.open("c", dir=topic_dir)


def test_an_unsafe_directory_is_refused(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)  # writable by everyone, no sticky bit
    with pytest.raises(shmq.PermissionDenied, match="unsafe topic directory"):
        shmq.Topic.create("t", dir=str(d))


def test_publish_errors(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=4096, max_message=512)
    sub = t.subscribe()
    p = t.producer()
    with pytest.raises(shmq.Busy):
        t.producer()
    with pytest.raises(shmq.TooLarge):
        p.publish(bytes(513))
    while True:
        try:
            p.try_publish(bytes(100))
        except shmq.Full:
            break
    with pytest.raises(shmq.Full):
        p.publish(bytes(100), timeout=0.05)
    with pytest.raises(TypeError):
        p.publish("text is not bytes")
    with pytest.raises(shmq.InvalidArgument, match="timeout"):
        p.publish(b"x", timeout=-1)
    del sub


def test_publish_batch_errors_say_how_many_went_out(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=4096, max_message=512)
    sub = t.subscribe()
    p = t.producer()
    with pytest.raises(shmq.TooLarge) as e:
        p.publish_batch([b"a", b"bb", bytes(513), b"d"])
    assert e.value.published == 2
    assert [bytes(sub.try_recv()) for _ in range(2)] == [b"a", b"bb"]
    with pytest.raises(shmq.Empty):
        sub.try_recv()
    # A full ring: timeout 0 publishes what fits and says how many.
    many = [bytes([i % 256]) * 100 for i in range(100)]
    n = p.publish_batch(many, timeout=0)
    assert 0 < n < len(many)
    assert p.publish_batch(many[n:], timeout=0.02) == 0
    for i in range(n):
        assert bytes(sub.try_recv()) == many[i]
    with pytest.raises(TypeError):
        p.publish_batch([b"ok", "text is not bytes"])
    g = p.reserve(4)
    with pytest.raises(shmq.Busy, match="outstanding"):
        p.publish_batch([b"x"])
    g.abort()
    assert p.publish_batch([]) == 0


def test_grant_errors(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16, max_message=512)
    p = t.producer()
    g = p.reserve(10)
    with pytest.raises(shmq.Busy, match="outstanding"):
        p.publish(b"x")
    with pytest.raises(shmq.Busy, match="outstanding"):
        p.reserve(4)
    with pytest.raises(shmq.TooLarge):
        g.commit(11)  # more than reserved: the claim stays
    g.commit(10)
    with pytest.raises(shmq.Error, match="already"):
        g.commit()
    with pytest.raises(shmq.TooLarge):
        p.reserve(513)


def test_recv_errors(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    sub = t.subscribe()
    with pytest.raises(shmq.Empty):
        sub.try_recv()
    with pytest.raises(shmq.Timeout):
        sub.recv(timeout=0.05)
    p = t.producer()
    p.publish(b"last")
    p.close_stream()
    assert bytes(sub.recv(timeout=1)) == b"last"
    with pytest.raises(shmq.Closed, match="closed"):
        sub.recv(timeout=1)
    # Iteration ends at the close.
    p.publish(b"again")  # reopens
    t.close_stream()
    assert [bytes(m) for m in sub] == [b"again"]


def test_subscribe_errors(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16, max_subscribers=2)
    a = t.subscribe_durable("name")
    with pytest.raises(shmq.Busy, match="name"):
        t.subscribe_durable("name")
    b = t.subscribe()
    with pytest.raises(shmq.Busy):
        t.subscribe()
    del a, b
    assert t.unsubscribe_durable("name")  # a durable slot outlives its subscriber
    o = shmq.Topic.create("o", dir=topic_dir, capacity=1 << 16, policy="overwrite")
    with pytest.raises(shmq.InvalidArgument):
        o.subscribe_group("g")
    g = t.subscribe_group("g", max_deliveries=3, dead_letter="t.dead")
    with pytest.raises(shmq.Incompatible):
        t.subscribe_group("g", max_deliveries=5, dead_letter="t.dead")
    del g


def test_an_evicted_subscriber_is_told(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    sub = t.subscribe_durable("evictme")
    # Another process rewrites the slot's owner (as `shmq repair` does to a
    # slot it reclaims): find the slot by its name.
    data = Path(t.path).read_bytes()
    name_at = data.index(b"evictme")
    owner_at = name_at - 168 + 128  # slot::NAME, slot::OWNER
    with open(t.path, "r+b") as f:
        f.seek(owner_at)
        f.write((12345).to_bytes(8, "little"))
    with pytest.raises(shmq.Evicted, match="subscribe again"):
        sub.recv(timeout=1)


def test_lagged_counts_exactly_on_overwrite(topic_dir):
    t = shmq.Topic.create("o", dir=topic_dir, capacity=4096, max_message=256, policy="overwrite")
    sub = t.subscribe()
    p = t.producer()
    n = 1000
    for i in range(n):
        p.publish(i.to_bytes(4, "little") * 25)
    with pytest.raises(shmq.Lagged) as e:
        sub.recv(timeout=1)
    lost = e.value.count
    assert lost > 0 and "lagged" in str(e.value)
    seqs = []
    while True:
        try:
            m = sub.try_recv()
        except shmq.Empty:
            break
        seqs.append(m.seq)
        assert bytes(m) == m.seq.to_bytes(4, "little") * 25
    # Nothing lost without being counted: lost + received == published, and
    # the first message received is the first one not lost.
    assert seqs[0] == lost
    assert seqs == list(range(lost, n))
    assert sub.lost == lost and sub.received == n - lost
