"""Run every flowscope benchmark in turn (each in its own process) and echo its output.

    .venv/bin/python bench/run_all.py                 # all
    .venv/bin/python bench/run_all.py query rpc       # only those whose name contains a word
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_ingest.py", "bench_cli.py", "bench_query.py", "bench_rpc.py", "bench_live_memory.py",
           "bench_packets.py", "bench_hosts.py", "bench_store.py", "bench_tools.py", "bench_collector.py"]


def main() -> int:
    words = sys.argv[1:]
    chosen = [b for b in BENCHES if not words or any(w in b for w in words)]
    failed = []
    for name in chosen:
        print(f"\n=== {name} " + "=" * (60 - len(name)), flush=True)
        t0 = time.perf_counter()
        try:
            rc = subprocess.run([sys.executable, str(HERE / name)], cwd=HERE.parent, timeout=900).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        print(f"--- {name}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
