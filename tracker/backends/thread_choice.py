"""One graph, several thread counts: each call runs on the count that has been fastest lately.

On a quiet machine two intra-op threads run NanoTrack's search about 1.5x faster than one; once
another process keeps a core busy, the second thread is often descheduled and every operator
waits for it, so two threads run 2-3x slower than one (``speed --load``, README "Speed on a
busy CPU"). No fixed count is right for both, and a robot's load changes while it runs.
:class:`FastestSession` keeps one session per thread count (onnxruntime computes the same
outputs bit for bit at any count: MLAS splits the work, never a sum) and sends each call to
the count whose recent calls took least time per batch item, trying the others for a few calls
now and then (less often while the choice holds) so that a change of load is noticed within a
few hundred to a few thousand calls.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Deque, Dict, List, Sequence, Tuple

import numpy as np
import onnxruntime as ort

#: Calls between two rounds of trying the other thread counts, right after a change of count;
#: each round that confirms the count doubles the wait, up to :data:`LONGEST_WAIT`.
PROBE_EVERY = 128
LONGEST_WAIT = 2048
#: Calls per thread count in a round of trying, also the first round (the first call after a
#: pause is not counted: its pool has been asleep and its caches hold the other session's
#: weights).
PROBE_CALLS = 4
#: Recent calls per thread count whose mean (less the slowest one) decides: the mean, because
#: a frame rate is frames over total time, and a loaded core shows as a long tail of slow calls.
HISTORY = 6


class FastestSession:
    """Sessions of one graph that differ only in thread count, run as one session.

    ``run`` has ``InferenceSession.run``'s signature and results; :attr:`threads` is the
    count the next call goes to. Not thread-safe: one tracker serialises its calls.
    """

    def __init__(self, sessions: Sequence[ort.InferenceSession], threads: Sequence[int]) -> None:
        if len(sessions) != len(threads) or len(sessions) < 2:
            raise ValueError("FastestSession needs two or more sessions, one per thread count")
        self._sessions = list(sessions)
        self._threads = list(threads)
        self._seconds: List[Deque[float]] = [deque(maxlen=HISTORY) for _ in sessions]
        self._current = len(sessions) - 1
        # (session, counted) calls still to make before choosing again: first every count in
        # turn until each has a history, then a round of trying every PROBE_EVERY calls.
        self._plan: List[Tuple[int, bool]] = self._trial(PROBE_CALLS)
        self._since_probe = 0
        self._wait = PROBE_EVERY

    @property
    def threads(self) -> int:
        """The thread count in use."""
        return self._threads[self._current]

    def chosen(self) -> Dict[int, float]:
        """The seconds per batch item each thread count took lately, as compared (for reports)."""
        return {t: _typical(s) for t, s in zip(self._threads, self._seconds) if s}

    def get_inputs(self) -> list:
        return self._sessions[0].get_inputs()

    def get_outputs(self) -> list:
        return self._sessions[0].get_outputs()

    def run(self, output_names: Sequence[str], feeds: Dict[str, np.ndarray]) -> list:
        if self._plan:
            index, counted = self._plan.pop(0)
        else:
            index, counted = self._current, True
            self._since_probe += 1
            if self._since_probe >= self._wait:
                self._since_probe = 0
                self._plan = self._trial(PROBE_CALLS, skip=self._current)
        items = max(len(value) for value in feeds.values())
        begin = time.perf_counter()
        outputs = self._sessions[index].run(output_names, feeds)
        if counted:
            self._seconds[index].append((time.perf_counter() - begin) / items)
        if not self._plan:
            fastest = self._fastest()
            if fastest != self._current:
                self._current, self._wait = fastest, PROBE_EVERY
            elif index != self._current:
                self._wait = min(2 * self._wait, LONGEST_WAIT)
        return outputs

    def _trial(self, calls: int, skip: int = -1) -> List[Tuple[int, bool]]:
        """Each session but ``skip`` for ``calls`` calls, its first one uncounted; their old
        times are forgotten, so that only fresh ones are compared with the current count's."""
        tried = [index for index in range(len(self._sessions)) if index != skip]
        for index in tried:
            self._seconds[index].clear()
        return [(index, call > 0) for index in tried for call in range(calls)]

    def _fastest(self) -> int:
        return int(np.argmin([_typical(s) if s else np.inf for s in self._seconds]))


def _typical(seconds: Deque[float]) -> float:
    """The mean of ``seconds`` less the slowest (one descheduling must not decide)."""
    values = sorted(seconds)
    return float(np.mean(values[:-1] if len(values) > 2 else values))
