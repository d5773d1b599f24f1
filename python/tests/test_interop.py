"""Python, Rust and C processes on one topic: every byte and the order
checked, in every direction."""

import pytest

import shmq

N = 20_000
MAXLEN = 3000


def run(spawn, producer, consumers, topic_dir, role="publish"):
    shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16, max_message=MAXLEN)
    subs = [spawn(c, "check", topic_dir, "t", N, MAXLEN) for c in consumers]
    for s in subs:
        s.ready()
    pub = spawn(producer, role, topic_dir, "t", N, MAXLEN)
    assert pub.finish() == f"published {N}"
    for s in subs:
        assert s.finish() == f"ok {N}"


def test_python_to_two_python_processes(spawn, py_peer, topic_dir):
    run(spawn, py_peer, [py_peer, py_peer], topic_dir)


@pytest.mark.parametrize("other", ["rust_peer", "c_peer"])
def test_python_to_other_language(spawn, py_peer, other, topic_dir, request):
    run(spawn, py_peer, [request.getfixturevalue(other)], topic_dir)


@pytest.mark.parametrize("other", ["rust_peer", "c_peer"])
def test_other_language_to_python(spawn, py_peer, other, topic_dir, request):
    run(spawn, request.getfixturevalue(other), [py_peer], topic_dir)


def test_grant_writes_are_seen_by_rust_and_c(spawn, py_peer, rust_peer, c_peer, topic_dir):
    # Written in place through Producer.reserve (zero-copy), read by both.
    run(spawn, py_peer, [rust_peer, c_peer], topic_dir, role="publish-grant")


def test_batches_are_seen_by_python_rust_and_c(spawn, py_peer, rust_peer, c_peer, topic_dir):
    # Runs of messages under one claim each (Producer.publish_batch).
    run(spawn, py_peer, [py_peer, rust_peer, c_peer], topic_dir, role="publish-batch")
