"""Blocking calls release the GIL and are interrupted by Ctrl-C."""

import signal
import subprocess
import sys
import textwrap
import threading
import time

import shmq


def test_other_threads_run_while_recv_blocks(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    sub = t.subscribe()
    count = [0]
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1  # pure Python: runs only with the GIL

    th = threading.Thread(target=counter)
    th.start()
    before = count[0]
    try:
        sub.recv(timeout=1.0)
    except shmq.Timeout:
        pass
    during = count[0] - before
    stop.set()
    th.join()
    # Had recv held the GIL, the counter could have run only until the
    # switch interval (5 ms) handed the GIL back: a few tens of thousands
    # of steps. With the GIL released it ran for most of the second.
    assert during > 300_000, during


def test_a_message_from_another_thread_wakes_a_blocked_recv(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    sub, p = t.subscribe(), t.producer()
    th = threading.Thread(target=lambda: p.publish(b"hello"))
    th.start()
    assert bytes(sub.recv(timeout=30)) == b"hello"
    th.join()


def test_a_release_while_another_thread_blocks_in_recv_frees_the_producer(topic_dir):
    # The release cannot take the subscriber (a blocked recv holds it, a
    # slice at a time): it is deferred to the holder and still published.
    t = shmq.Topic.create("t", dir=topic_dir, capacity=4096, max_message=512)
    sub, p = t.subscribe(), t.producer()
    while True:
        try:
            p.try_publish(bytes(400))
        except shmq.Full:
            break
    held = []
    while True:
        try:
            held.append(sub.try_recv())
        except shmq.Empty:
            break
    published = threading.Event()

    def produce():
        p.publish(b"room came", timeout=30)  # waits: every byte is held
        published.set()

    producer = threading.Thread(target=produce)
    producer.start()
    threading.Timer(0.2, held.clear).start()  # releases them from a third thread
    msg = sub.recv(timeout=30)  # blocked until the producer gets room
    assert bytes(msg) == b"room came" and published.wait(30)
    producer.join()


def sleeping_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def interrupted(code, topic_dir):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"SHMQ_DIR": topic_dir, "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout.readline().strip() == "waiting"
    # Signal it once it sleeps in the wait (not while it still runs Python).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sleeping_state(proc.pid) != "S":
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_ctrl_c_interrupts_a_blocked_recv(topic_dir):
    rc, out, err = interrupted(
        """
        import shmq
        sub = shmq.Topic.create("t", capacity=1 << 16).subscribe()
        try:
            print("waiting", flush=True)
            sub.recv()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """,
        topic_dir,
    )
    assert rc == 0 and out.strip() == "interrupted", err


def test_ctrl_c_interrupts_a_blocked_publish(topic_dir):
    rc, out, err = interrupted(
        """
        import shmq
        t = shmq.Topic.create("t", capacity=4096, max_message=512)
        sub, p = t.subscribe(), t.producer()
        try:
            while True:
                p.try_publish(bytes(400))
        except shmq.Full:
            pass
        try:
            print("waiting", flush=True)
            p.publish(bytes(400))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """,
        topic_dir,
    )
    assert rc == 0 and out.strip() == "interrupted", err
