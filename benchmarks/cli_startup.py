"""Time `genloom --help` (and other torch-free commands) in fresh interpreters; prints median and spread.

    python benchmarks/cli_startup.py [--runs 20]
    smoke mode (CI): --runs 1
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def time_command(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the file cache
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    beside = Path(sys.executable).parent / "genloom"  # the venv this interpreter belongs to, even if not activated
    exe = str(beside) if beside.is_file() else shutil.which("genloom")
    if exe is None:
        sys.exit("genloom is not installed beside this Python nor on PATH; pip install the project first")
    for argv in ([exe, "--help"], [exe, "plugins"], [exe, "models"]):
        times = time_command(argv, args.runs)
        print(f"{' '.join(['genloom', *argv[1:]]):<18} median {statistics.median(times) * 1000:7.1f} ms   "
              f"min {min(times) * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms   ({args.runs} runs)")


if __name__ == "__main__":
    main()
