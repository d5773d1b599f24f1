"""Fixtures for the shmq Python tests: a topic directory per test, and the
Rust and C peers (built here if missing, so `pytest python/tests` works on
its own after `pip install ./python`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"


@pytest.fixture
def topic_dir(tmp_path):
    d = tmp_path / "topics"
    d.mkdir()
    return str(d)


@pytest.fixture(scope="session")
def rust_peer():
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "-p", "shmq", "--example", "interop"],
        cwd=ROOT,
        check=True,
    )
    return [str(TARGET / "examples" / "interop")]


@pytest.fixture(scope="session")
def c_peer(tmp_path_factory):
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "shmq-ffi"], cwd=ROOT, check=True)
    exe = tmp_path_factory.mktemp("c") / "peer"
    subprocess.run(
        [
            "cc", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c99",
            "-I", str(ROOT / "ffi" / "include"),
            str(HERE / "peer.c"), str(TARGET / "libshmq.a"),
            "-lpthread", "-ldl", "-lm", "-o", str(exe),
        ],
        check=True,
    )
    return [str(exe)]


@pytest.fixture(scope="session")
def py_peer():
    return [sys.executable, str(HERE / "peer.py")]


class Peer:
    """A peer process; `ready()` waits for its "ready" line."""

    def __init__(self, cmd, *args):
        self.proc = subprocess.Popen(
            [*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def ready(self):
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"peer said {line!r}: {self.proc.stderr.read()}"

    def finish(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"peer failed ({self.proc.returncode}): {err}"
        return out.strip().splitlines()[-1]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def spawn():
    peers = []

    def start(cmd, *args):
        p = Peer(cmd, *args)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.kill()
