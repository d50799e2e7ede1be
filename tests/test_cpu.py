"""Thread counts that fit the free cores."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bbedit.backends import cpu


def test_free_cores_sees_a_busy_process() -> None:
    idle = cpu.free_cores(0.3)
    assert 0.0 <= idle <= (os.cpu_count() or 1) + 1e-9
    if idle < 0.8:
        pytest.skip(f"no core is free to take ({idle:.2f} idle)")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert cpu.free_cores(0.5) <= idle - 0.5  # one core taken by the loop
    finally:
        busy.kill()
        busy.wait()


def test_fitting_threads_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "free_cores", lambda sample_s=0.25: 0.2)
    assert cpu.fitting_threads(4) == 1  # never zero
    monkeypatch.setattr(cpu, "free_cores", lambda sample_s=0.25: 1.8)
    assert cpu.fitting_threads(4) == 2 and cpu.fitting_threads(1) == 1


def test_without_proc_stat_every_core_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "_cpu_times", lambda: None)
    assert cpu.free_cores(0.0) == float(os.cpu_count() or 1)
