"""How many torch threads the default run should use: 1, 2, torch's default and the policy
(``--threads auto``, ``protobench.devices.choose_threads``: the free cores), on an idle
machine and beside a concurrent test suite.

    python research/threads.py [--variants 1 2 default auto] [--load "python -m pytest -q -x"]

Each variant runs ``python -m protobench.run --out <tmp> --fresh --no-figures --quiet`` (the
default sweep, as ``make run`` but with nothing drawn) and prints its wall time, then the
same again while the load command runs over and over (started --settle seconds before, so that
the load average sees it). The load's whole process group is stopped after the last run. Time it on an otherwise idle
machine: anything else running shifts both columns.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(threads: str, out: Path) -> tuple[float, str]:
    command = [sys.executable, "-m", "protobench.run", "--out", str(out), "--fresh",
               "--no-figures", "--quiet"]
    if threads != "default":
        command += ["--threads", threads]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    info = json.loads((out / "run.json").read_text())
    per_unit = ", ".join(f"{units} units on {n}" for n, units in info["threads_units"].items())
    return seconds, per_unit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["1", "2", "default", "auto"])
    parser.add_argument("--load", default="python -m pytest -q -p no:cacheprovider",
                        help="the concurrent load, repeated until the last run ends "
                             "(default: the test suite)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds between starting the load and the first run under it")
    args = parser.parse_args()

    print(f"{os.cpu_count()} cores; the default sweep (make run without figures)")
    print("| threads | idle (s) | threads used | beside the load (s) | threads used | ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        idle = {v: timed_run(v, Path(tmp) / f"idle-{v}") for v in args.variants}
        repeat = f"while true; do {args.load}; done"
        load = subprocess.Popen(["bash", "-c", repeat], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(args.settle)
            loaded = {v: timed_run(v, Path(tmp) / f"load-{v}") for v in args.variants}
        finally:
            os.killpg(load.pid, signal.SIGTERM)
            load.wait()
    for v in args.variants:
        (t0, used0) = idle[v]
        t1, used1 = loaded.get(v, (float("nan"), "-"))
        print(f"| {v} | {t0:.0f} | {used0} | {t1:.0f} | {used1} | {t1 / t0:.2f} |")


if __name__ == "__main__":
    main()
