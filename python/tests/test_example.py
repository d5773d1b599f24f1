"""The ML example runs: a producer process and two consumer processes,
every element of every batch checked by the consumers."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml_batches.py"


def test_the_ml_example_checks_every_batch_in_two_consumers():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--batches", "300", "--rows", "64", "--features", "32"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum("300 batches checked, every element" in line for line in lines) == 2, out.stdout
    assert any(line.startswith("producer: 300 batches") for line in lines), out.stdout
