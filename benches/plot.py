#!/usr/bin/env python3
"""Plots `shmq bench --json` output into docs/bench-latency.png and
docs/bench-throughput.png (needs matplotlib: pip install matplotlib).

    target/release/shmq bench --json > docs/bench.json
    python3 benches/plot.py docs/bench.json
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "raw": "raw cache line (floor)",
    "frames": "bare ring of frames (floor)",
    "shmq": "shmq busy-poll",
    "c": "shmq C API",
    "futex": "futex ping-pong (floor)",
    "shmq-block": "shmq blocking recv",
    "unix": "unix socket",
    "pipe": "pipe",
    "mq": "POSIX mq",
    "bare": "bare SPSC ring (ceiling)",
    "shmq-ts": "shmq, with timestamps",
    "shmq-batch": "shmq publish_batch (32)",
    "shmq-batch-in-place": "shmq batch in place (32)",
    "shmq-multi": "shmq multi-producer",
    "shmq-overwrite": "shmq Overwrite (received)",
}


def main(path):
    data = json.loads(Path(path).read_text())
    out = Path(path).parent

    # Latency percentiles, 64 B, log scale.
    lat = [r for r in data["latency_one_way_ns"] if r["size"] == 64]
    pcts = ["p50", "p90", "p99", "p999"]
    fig, ax = plt.subplots(figsize=(9, 5))
    for r in lat:
        ax.plot(pcts, [r[p] for p in pcts], marker="o", label=LABELS.get(r["kind"], r["kind"]))
    ax.set_yscale("log")
    ax.set_ylabel("one-way latency, ns (log)")
    ax.set_title("64-byte round trip between two pinned processes, reported one-way")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out / "bench-latency.png", dpi=110)

    # Throughput bars per size, log scale.
    tput = data["throughput"]
    sizes = sorted({r["size"] for r in tput})
    kinds = [k for k in [
        "bare", "shmq", "shmq-batch", "shmq-batch-in-place", "shmq-multi", "shmq-overwrite", "shmq-ts",
        "unix", "pipe", "mq",
    ] if any(r["kind"] == k for r in tput)]
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / len(kinds)
    for i, k in enumerate(kinds):
        vals = []
        for s in sizes:
            hit = [r["gb_per_s"] for r in tput if r["kind"] == k and r["size"] == s]
            vals.append(hit[0] if hit else 0)
        ax.bar([x + i * width for x in range(len(sizes))], vals, width, label=LABELS.get(k, k))
    ax.set_xticks([x + width * (len(kinds) - 1) / 2 for x in range(len(sizes))])
    ax.set_xticklabels([f"{s} B" if s < 1024 else (f"{s // 1024} KiB" if s < 1 << 20 else f"{s >> 20} MiB") for s in sizes])
    ax.set_yscale("log")
    ax.set_ylabel("GB/s (log), every byte checked by the consumer")
    ax.set_title("Throughput, one producer and one consumer process, pinned")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out / "bench-throughput.png", dpi=110)
    print(f"wrote {out / 'bench-latency.png'} and {out / 'bench-throughput.png'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/bench.json")
