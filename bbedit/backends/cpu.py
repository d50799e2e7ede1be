"""How many cores are free right now: the thread count that does not fight other processes.

llama.cpp's threads and torch's OpenMP threads wait for each other by spinning. With one more
thread than there are free cores, each step waits for a thread that is not running: measured on
the 2-core machine with one other busy process, four 48-token replies from SmolLM2 took 91 s with
2 llama.cpp threads and 3.3 s with 1 (1.6 s with 2 on the idle machine), and a torch matmul loop
took 25.8 s with 2 threads and 5.8 s with 1.
"""

from __future__ import annotations

import os
import time

__all__ = ["fitting_threads", "free_cores"]


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies over all cores from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return idle, sum(values[:8])  # guest time is already counted in user


def free_cores(sample_s: float = 0.25) -> float:
    """Cores left idle by every process over the next ``sample_s`` seconds (0..cpu_count).

    Without /proc/stat (not Linux) every core is reported free."""
    n = os.cpu_count() or 1
    first = _cpu_times()
    if first is None:
        return float(n)
    time.sleep(sample_s)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return float(n)
    return n * (second[0] - first[0]) / (second[1] - first[1])


def fitting_threads(most: int, sample_s: float = 0.25) -> int:
    """At most ``most`` threads, and no more than the cores that are free now (at least 1)."""
    return max(1, min(most, int(free_cores(sample_s) + 0.3)))
