"""A Python peer for the cross-language tests, with the roles of
examples/interop.rs and peer.c: publish or check N messages of a fixed
pattern (message i: length 1 + i*7919 % MAXLEN, byte j = i*131 + j*7).

    python peer.py publish|publish-grant|publish-batch|check DIR TOPIC N MAXLEN
"""

import sys

import numpy as np

import shmq


def pattern(i: int, maxlen: int) -> np.ndarray:
    n = 1 + (i * 7919) % maxlen
    return ((i * 131 + np.arange(n, dtype=np.uint64) * 7) & 0xFF).astype(np.uint8)


def main(role: str, dir: str, name: str, n: int, maxlen: int) -> None:
    topic = shmq.Topic.open(name, dir=dir)
    if role == "publish":
        p = topic.producer()
        for i in range(n):
            p.publish(pattern(i, maxlen))
        print(f"published {n}", flush=True)
    elif role == "publish-grant":
        # Zero-copy writes: each message is written in place in the ring.
        p = topic.producer()
        for i in range(n):
            want = pattern(i, maxlen)
            with p.reserve(len(want)) as g:
                view = np.frombuffer(g, dtype=np.uint8)
                view[:] = want
                del view
        print(f"published {n}", flush=True)
    elif role == "publish-batch":
        # Runs of up to 50 messages, each run one publish_batch call.
        p = topic.producer()
        for start in range(0, n, 50):
            batch = [pattern(i, maxlen) for i in range(start, min(start + 50, n))]
            sent = p.publish_batch(batch)
            if sent != len(batch):
                sys.exit(f"publish_batch published {sent} of {len(batch)}")
        print(f"published {n}", flush=True)
    elif role == "check":
        sub = topic.subscribe()
        print("ready", flush=True)
        for i in range(n):
            with sub.recv(timeout=60) as msg:
                got = np.frombuffer(msg, dtype=np.uint8)
                want = pattern(i, maxlen)
                if got.shape != want.shape or not np.array_equal(got, want):
                    sys.exit(f"message {i}: {len(got)} bytes, not the {len(want)} expected")
                del got
        print(f"ok {n}", flush=True)
    else:
        sys.exit(f"unknown role {role!r}")


if __name__ == "__main__":
    role, dir, name, n, maxlen = sys.argv[1:]
    main(role, dir, name, int(n), int(maxlen))
