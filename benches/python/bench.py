"""Python IPC benchmark: shmq against multiprocessing.Queue,
multiprocessing.Pipe, pyzmq ipc:// and iceoryx2's Python package (those
that import), between two Python processes pinned to two CPUs, in one run.

    python benches/python/bench.py [--repeat 3] [--json-out F] [--svg F]

For 64 B and 64 KiB numpy payloads it measures
  * throughput: one producer streams N messages; the consumer views each
    as a numpy array and checks its first and last words (the message's
    number) and its length; rate = messages / time at the consumer;
  * one-way latency: ping-pong, half of each round trip, p50 and p99.
and, as the reference for the 64 KiB target, shmq's own Rust throughput
(`shmq bench --only throughput --size 64KiB`) in the same run. Each figure
is the median of --repeat rounds, the transports interleaved in each.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import queue
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transports  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZES = [64, 65536]
FORK = mp.get_context("fork")
SMALL = 4096  # payloads up to this are bytearrays checked with struct; larger ones numpy arrays
WORD = struct.Struct("<Q")
PINNED = True  # set per transport (transports.Zmq is not pinned)


def pin(cpu):
    if not PINNED:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


def check(buf, i, words):
    """Checks a received payload: its length and its first and last words
    (numpy for large payloads, struct for small: the harness's own cost
    is kept well under the transports')."""
    if words * 8 > SMALL:
        a = np.frombuffer(buf, dtype=np.uint64)
        ok = a.size == words and a[0] == i and a[-1] == i
    else:
        ok = len(buf) == words * 8 and WORD.unpack_from(buf, 0)[0] == i and WORD.unpack_from(buf, words * 8 - 8)[0] == i
    if not ok:
        raise SystemExit(f"message {i}: wrong payload ({len(memoryview(buf).cast('B'))} bytes)")


def payload(words):
    """The producer's message buffer, rewritten in place for each message:
    a numpy array for large payloads, a bytearray for small ones."""
    return np.zeros(words, dtype=np.uint64) if words * 8 > SMALL else bytearray(words * 8)


def number(a, i):
    """Writes message number `i` into its first and last words."""
    if isinstance(a, np.ndarray):
        a[0] = a[-1] = i
    else:
        WORD.pack_into(a, 0, i)
        WORD.pack_into(a, len(a) - 8, i)


# Each process pins its main thread after making its end of the channel, so
# helper threads a transport starts (pyzmq's I/O thread, mp.Queue's
# feeder) are not pinned with it.


def check_all(buf, i, words):
    """Checks every word of a payload (the work `shmq bench` does in Rust)."""
    a = np.frombuffer(buf, dtype=np.uint64)
    # min == max == i: every word is i (two passes, no temporary array).
    if a.size != words or a.min() != i or a.max() != i:
        raise SystemExit(f"message {i}: wrong payload")


def tp_consumer(ch, n, words, cpu, ready, out, full=False):
    r = ch.receiver()
    pin(cpu)
    ready.set()
    chk = check_all if full else check
    b = r.recv()
    chk(b, 0, words)
    t0 = time.perf_counter_ns()
    for i in range(1, n):
        b = r.recv()
        chk(b, i, words)
    out.put((n - 1) / ((time.perf_counter_ns() - t0) / 1e9))


def tp_producer(ch, n, words, cpu, ready, full=False):
    ready.wait()
    s = ch.sender()
    pin(cpu)
    a = payload(words)
    for i in range(n):
        if full:
            a[:] = i  # every word written (numpy), as `shmq bench` does
        else:
            number(a, i)
        s.send(a)
    getattr(s, "finish", lambda: None)()


def run(procs, out, timeout=120):
    """Starts `procs`, returns what one of them puts on `out`, or None if
    nothing comes within `timeout` s (a stalled transport: reported, not
    waited for)."""
    for p in procs:
        p.start()
    try:
        return out.get(timeout=timeout)
    except queue.Empty:
        return None
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()


def throughput(t, size, n, dir, tag, full=False):
    ch = t.channel(f"tp{tag}")
    words = size // 8
    ready, out = FORK.Event(), FORK.Queue()
    c = FORK.Process(target=tp_consumer, args=(ch, n, words, 1, ready, out, full))
    p = FORK.Process(target=tp_producer, args=(ch, n, words, 0, ready, full))
    r = run([c, p], out)
    return float("nan") if r is None else r


def echo(ab, ba, k, words, cpu, ready_b, ready_a):
    r = ab.receiver()
    ready_b.set()
    ready_a.wait()
    s = ba.sender()
    pin(cpu)
    for i in range(k):
        b = r.recv()
        s.send(b)
        del b
    getattr(s, "finish", lambda: None)()


def pinger(ab, ba, k, words, cpu, ready_b, ready_a, out):
    r = ba.receiver()
    ready_b.wait()
    s = ab.sender()
    pin(cpu)
    ready_a.set()
    a = payload(words)
    rtts = []
    for i in range(k):
        number(a, i)
        t0 = time.perf_counter_ns()
        s.send(a)
        b = r.recv()
        rtts.append(time.perf_counter_ns() - t0)
        check(b, i, words)
        del b
    getattr(s, "finish", lambda: None)()
    half = np.array(rtts[k // 10:]) / 2  # the first tenth is warm-up
    out.put((float(np.percentile(half, 50)), float(np.percentile(half, 99))))


def latency(t, size, k, dir, tag):
    ab, ba = t.channel(f"ab{tag}"), t.channel(f"ba{tag}")
    words = size // 8
    ready_b, ready_a, out = FORK.Event(), FORK.Event(), FORK.Queue()
    e = FORK.Process(target=echo, args=(ab, ba, k, words, 1, ready_b, ready_a))
    a = FORK.Process(target=pinger, args=(ab, ba, k, words, 0, ready_b, ready_a, out))
    r = run([e, a], out)
    return (float("nan"), float("nan")) if r is None else r


def rust_64k():
    exe = ROOT / "target" / "release" / "shmq"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "shmq"], cwd=ROOT, check=True)
    out = subprocess.run([str(exe), "bench", "--only", "throughput", "--size", "64KiB", "--quick", "--json"],
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)["throughput"]
    return next(r["msgs_per_s"] for r in rows if r["kind"] == "shmq")


def main():
    global PINNED
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json-out")
    ap.add_argument("--svg")
    ap.add_argument("--quick", action="store_true", help="fewer messages (a smoke run)")
    a = ap.parse_args()
    scale = 10 if a.quick else 1
    n = {64: 200_000 // scale, 65536: 20_000 // scale}
    k = {64: 20_000 // scale, 65536: 5_000 // scale}
    ts = transports.available()
    res = {t.name: {s: {"tp": [], "p50": [], "p99": []} for s in SIZES} for t in ts}
    rust, full = [], []
    with tempfile.TemporaryDirectory(prefix="shmq-pybench-") as d:
        os.chmod(d, 0o700)
        for rnd in range(a.repeat):
            PINNED = True
            rust.append(rust_64k())
            full.append(throughput(transports.Shmq(d, 65536), 65536, n[65536], d, f"full{rnd}", full=True))
            print(f"round {rnd + 1}/{a.repeat} 64 KiB every word: Rust {rust[-1] / 1e3:.1f} k msg/s, "
                  f"Python {full[-1] / 1e3:.1f} k msg/s", file=sys.stderr, flush=True)
            for size in SIZES:
                for t in ts:
                    tr = t(d, size)
                    PINNED = getattr(t, "pinned", True)
                    tag = f"{rnd}-{size}-{ts.index(t)}"
                    res[t.name][size]["tp"].append(throughput(tr, size, n[size], d, tag))
                    p50, p99 = latency(tr, size, k[size], d, tag)
                    res[t.name][size]["p50"].append(p50)
                    res[t.name][size]["p99"].append(p99)
                    print(f"round {rnd + 1}/{a.repeat} {size:>6} B {t.name:<22} "
                          f"{res[t.name][size]['tp'][-1] / 1e3:9.1f} k msg/s  p50 {p50 / 1e3:8.2f} us",
                          file=sys.stderr, flush=True)
    med = {t: {s: {m: median(v) for m, v in r.items()} for s, r in by.items()} for t, by in res.items()}
    stalls = {t: {s: sum(math.isnan(x) for x in r["tp"] + r["p50"]) for s, r in by.items()} for t, by in res.items()}
    ratios = [f / r for f, r in zip(full, rust)]
    report(med, stalls, median(rust), median(full), median(ratios), a.repeat)
    if a.json_out:
        nan_to_null = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
        res = {t: {s: {m: [nan_to_null(x) for x in v] for m, v in r.items()} for s, r in by.items()}
               for t, by in res.items()}
        med = {t: {s: {m: nan_to_null(v) for m, v in r.items()} for s, r in by.items()} for t, by in med.items()}
        Path(a.json_out).write_text(json.dumps({"median": med, "rounds": res, "stalls": stalls,
                                                "rust_64k_every_word": rust, "python_64k_every_word": full,
                                                "repeat": a.repeat}, indent=1))
    if a.svg:
        Path(a.svg).write_text(svg(med))


def median(v):
    """The median of the rounds that finished (a stalled round is NaN)."""
    ok = [x for x in v if not math.isnan(x)]
    return statistics.median(ok) if ok else float("nan")


def report(med, stalls, rust_med, full_med, ratio, repeat):
    q = med["multiprocessing.Queue"]
    for size in SIZES:
        print(f"\n### {size} B payloads (median of {repeat})\n")
        print("| transport | throughput (msg/s) | × mp.Queue | one-way p50 | one-way p99 |")
        print("|---|---|---|---|---|")
        for t, by in med.items():
            r = by[size]
            print(f"| {t} | {r['tp'] / 1e3:,.1f} k | {r['tp'] / q[size]['tp']:.1f} | "
                  f"{r['p50'] / 1e3:.2f} µs | {r['p99'] / 1e3:.2f} µs |")
    s = med["shmq"]
    others = [t for t in med if t != "shmq"]
    print("\n### Targets\n")
    print(f"- 64 B throughput / multiprocessing.Queue: {s[64]['tp'] / q[64]['tp']:.1f} × (target ≥ 10)")
    for size in SIZES:
        best_tp = max(med[t][size]["tp"] for t in others)
        best_p50 = min(med[t][size]["p50"] for t in others)
        print(f"- {size} B: shmq throughput / best other {s[size]['tp'] / best_tp:.2f} ×, "
              f"best other p50 / shmq p50 {best_p50 / s[size]['p50']:.2f} × (both target > 1)")
    print(f"- 64 KiB, every word written and checked: Python (numpy) {full_med / 1e3:,.0f} k msg/s, "
          f"Rust (`shmq bench`) {rust_med / 1e3:,.0f} k msg/s: {ratio:.2f} × (median of the rounds' ratios; "
          f"target ≥ 0.5)")
    for t, by in stalls.items():
        for size, k in by.items():
            if k:
                print(f"- {t}, {size} B: {k} measurement(s) stalled (no result in 120 s), left out")


def svg(med):
    """A bar chart of throughput (log scale), one group per size."""
    names = list(med)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    w, h, left, top, bottom = 760, 360, 70, 30, 60
    vals = [med[t][s]["tp"] for s in SIZES for t in names]
    lo, hi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
    y = lambda v: top + (h - top - bottom) * (1 - (math.log10(v) - lo) / (hi - lo))  # noqa: E731
    group = (w - left - 20) / len(SIZES)
    bw = group / (len(names) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<text x="{w / 2}" y="18" text-anchor="middle">Python to Python throughput, messages/s (log scale)</text>']
    for e in range(lo, hi + 1):
        parts.append(f'<line x1="{left}" x2="{w - 20}" y1="{y(10 ** e):.1f}" y2="{y(10 ** e):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(10 ** e) + 4:.1f}" text-anchor="end">1e{e}</text>')
    for gi, s in enumerate(SIZES):
        x0 = left + gi * group + bw / 2
        for ti, t in enumerate(names):
            v = med[t][s]["tp"]
            x = x0 + ti * bw
            parts.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bw * 0.9:.1f}" '
                         f'height="{h - bottom - y(v):.1f}" fill="{colors[ti % 5]}"/>')
        parts.append(f'<text x="{x0 + len(names) * bw / 2:.1f}" y="{h - bottom + 16}" text-anchor="middle">'
                     f'{"64 B" if s == 64 else "64 KiB"}</text>')
    for ti, t in enumerate(names):
        parts.append(f'<rect x="{left + ti * 140}" y="{h - 24}" width="10" height="10" fill="{colors[ti % 5]}"/>')
        parts.append(f'<text x="{left + ti * 140 + 14}" y="{h - 15}">{t}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


if __name__ == "__main__":
    main()
