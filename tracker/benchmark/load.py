"""Busy background processes, for timing a tracker on a CPU that other programs share.

``speed --load N`` runs its timing inside :func:`busy_processes`: N Python processes that each
spin on one core (a robot's other nodes, a recorder, a planner). Each one stops by itself
after its time bound, and also as soon as the process that started it has gone, so a crashed
or killed benchmark never leaves cores busy; the context manager stops them on every way out,
Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Iterator, List

#: The longest a busy process may run, in seconds (a safety bound; they are stopped earlier).
MAX_SECONDS = 3600.0
_STOP_WAIT_SECONDS = 5.0

_BUSY_LOOP = """
import os, time
parent, end = {parent}, time.monotonic() + {seconds}
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(100000):
        pass
"""


@contextlib.contextmanager
def busy_processes(count: int, seconds: float = MAX_SECONDS) -> Iterator[List[subprocess.Popen]]:
    """Run ``count`` busy-looping processes for the duration of the ``with`` block.

    Each stops after ``seconds`` at the latest, or when this process is gone; all are stopped
    (and waited for) when the block is left, normally or by an exception such as
    ``KeyboardInterrupt``. ``count`` 0 starts nothing.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count: expected a whole number of busy processes >= 0, got {count!r}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds: expected a bound in (0, {MAX_SECONDS:g}], got {seconds!r}")
    code = _BUSY_LOOP.format(parent=os.getpid(), seconds=float(seconds))
    processes: List[subprocess.Popen] = []
    try:
        for _ in range(count):
            processes.append(subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        yield processes
    finally:
        stop(processes)


def stop(processes: List[subprocess.Popen]) -> None:
    """Terminate ``processes`` and wait for them (killed if they do not exit in time)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=_STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
