"""ML data loading over shmq: one producer process writes numpy batches
straight into the ring (no copy, no pickle), two consumer processes view
each batch as an array in place and check every element.

    pip install ./python numpy
    python examples/ml_batches.py [--batches 2000] [--rows 256] [--features 64]

Each batch is a float32 array (rows x features) followed by its int64
labels; batch i holds (i + k) % 1000 at flat index k, and labels i + row.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import shmq


def batch_values(i: int, rows: int, features: int) -> np.ndarray:
    return ((np.arange(rows * features, dtype=np.int64) + i) % 1000).astype(np.float32).reshape(rows, features)


def produce(topic: shmq.Topic, batches: int, rows: int, features: int) -> None:
    p = topic.producer()
    x_bytes, y_bytes = rows * features * 4, rows * 8
    for i in range(batches):
        # Zero-copy write: the arrays are views of the ring itself.
        with p.reserve(x_bytes + y_bytes) as g:
            x = np.frombuffer(g, dtype=np.float32, count=rows * features).reshape(rows, features)
            y = np.frombuffer(g, dtype=np.int64, offset=x_bytes, count=rows)
            x[:] = batch_values(i, rows, features)
            y[:] = np.arange(rows) + i
            del x, y  # views must go before the grant commits
    p.close_stream()  # consumers' loops end after the last batch


def consume(topic: shmq.Topic, rows: int, features: int, name: str) -> None:
    sub = topic.subscribe()
    print("ready", flush=True)
    x_bytes = rows * features * 4
    n, start = 0, time.perf_counter()
    for msg in sub:  # ends when the producer closes the stream
        x = np.frombuffer(msg, dtype=np.float32, count=rows * features).reshape(rows, features)
        y = np.frombuffer(msg, dtype=np.int64, offset=x_bytes, count=rows)
        i = int(y[0])
        if i != n or not np.array_equal(x, batch_values(i, rows, features)) or not np.array_equal(y, np.arange(rows) + i):
            sys.exit(f"{name}: batch {n} is wrong")
        n += 1
        del x, y, msg  # released: the producer may reuse its bytes
    secs = time.perf_counter() - start
    mb = n * (x_bytes + rows * 8) / 1e6
    print(f"{name}: {n} batches checked, every element, {mb / secs:.0f} MB/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--role", choices=["main", "consumer"], default="main", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--name", default="consumer", help=argparse.SUPPRESS)
    a = ap.parse_args()
    size = a.rows * a.features * 4 + a.rows * 8
    if a.role == "consumer":
        consume(shmq.Topic.open("batches", dir=a.dir), a.rows, a.features, a.name)
        return
    with tempfile.TemporaryDirectory(prefix="shmq-ml-") as d:
        os.chmod(d, 0o700)
        capacity = 1 << max(20, (8 * (size + 64)).bit_length())  # room for 8+ batches
        topic = shmq.Topic.create("batches", dir=d, capacity=capacity, max_message=size)
        cmd = [sys.executable, __file__, "--role", "consumer", "--dir", d,
               "--rows", str(a.rows), "--features", str(a.features)]
        consumers = [subprocess.Popen(cmd + ["--name", f"consumer {k}"], stdout=subprocess.PIPE, text=True)
                     for k in (1, 2)]
        for c in consumers:
            assert c.stdout.readline().strip() == "ready"
        start = time.perf_counter()
        produce(topic, a.batches, a.rows, a.features)
        for c in consumers:
            out, _ = c.communicate()
            print(out.strip())
            if c.returncode != 0:
                sys.exit(c.returncode)
        secs = time.perf_counter() - start
        print(f"producer: {a.batches} batches of {size} bytes to 2 consumers in {secs:.2f} s "
              f"({a.batches / secs:.0f} batches/s)")


if __name__ == "__main__":
    main()
