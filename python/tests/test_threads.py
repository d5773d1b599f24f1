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
    counted = []
    stop = threading.Event()

    def count():
        n = 0
        while not stop.is_set():
            n += 1  # pure Python: runs only with the GIL
        counted.append(n)

    th = threading.Thread(target=count)
    th.start()
    try:
        sub.recv(timeout=0.5)
    except shmq.Timeout:
        pass
    stop.set()
    th.join()
    # With the GIL held through the wait the counter would have stopped
    # for the whole half second; it made progress.
    assert counted[0] > 1000


def test_a_message_from_another_thread_wakes_a_blocked_recv(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=1 << 16)
    sub, p = t.subscribe(), t.producer()
    th = threading.Thread(target=lambda: p.publish(b"hello"))
    th.start()
    assert bytes(sub.recv(timeout=30)) == b"hello"
    th.join()


def test_a_release_from_another_thread_frees_a_blocked_producer(topic_dir):
    t = shmq.Topic.create("t", dir=topic_dir, capacity=4096, max_message=512)
    sub, p = t.subscribe(), t.producer()
    while True:
        try:
            p.try_publish(bytes(400))
        except shmq.Full:
            break
    held = [sub.recv(timeout=1) for _ in range(3)]
    threading.Timer(0.1, held.clear).start()  # drops (releases) them from another thread
    p.publish(bytes(400), timeout=30)


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
