#!/usr/bin/env bash
# Runs every test shmq has: formatting and lints, unit and doc tests,
# cross-process tests (including the kill and resource-limit harnesses),
# the FFI tests (C and C++ programs), the CLI tests, the Python package
# (built with maturin into a virtualenv under target/, then pytest), the loom
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
cargo test --workspace --release --exclude shmq-loom-tests

step "python package: pip install ./python into target/py, then pytest (with Rust and C peers)"
if [ ! -x target/py/bin/python ]; then
  python3 -m venv target/py
fi
target/py/bin/python -m pip install -q ./python "numpy==2.4.6" "pytest==9.2.0"
target/py/bin/python -m pytest -q python/tests

step "loom model checking (preemption bound ${LOOM_MAX_PREEMPTIONS:-2})"
cargo test -p shmq-loom-tests --release

step "loom mutations: each weakened ordering must be caught"
bash loom-tests/mutations.sh

step "soak: producers killed and subscribers restarted for ${SHMQ_SOAK_SECS:-60} s"
cargo run -q --release --example soak -- --secs "${SHMQ_SOAK_SECS:-60}"

step "all passed"
