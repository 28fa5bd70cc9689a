"""Which functions' thread trials lost lately, in one executor (``_thread_trial``).

A lost trial costs its batch's slowdown each map that runs one, so a function whose trials lost
k times in a row runs its next 2**k - 1 maps untried, 63 at most: over many maps, a trial in a
logarithmic few, and a function whose items have changed is tried again within 64 maps.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Any

#: Most maps of a function in a row that run untried after lost trials.
MOST_UNTRIED = 63


class TrialOutcomes:
    """Per function, in one executor: the trials lost in a row, and how many of its maps still
    run untried (after k losses, 2**k - 1, at most ``MOST_UNTRIED``). A win forgets the
    losses. Functions that cannot be weakly referenced are always tried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # fn -> [trials lost in a row, maps left to run untried]
        self._lost: weakref.WeakKeyDictionary[Callable[..., Any], list[int]] = (
            weakref.WeakKeyDictionary()
        )
        self._asked: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()  # maps seen

    def due(
        self,
        fn: Callable[..., Any],
        earlier_runs: Callable[[Callable[..., Any]], bool] | None = None,
    ) -> bool:
        """Whether this map of ``fn`` tries threads (else it counts as one map untried). The
        first map of ``fn`` asks ``earlier_runs`` too (``ProfileStore.trial_due_this_run``):
        a script's run is one executor's first map of its function, over and over."""
        first = False
        with self._lock, contextlib.suppress(TypeError):
            entry = self._lost.get(fn)
            if entry is not None and entry[1] > 0:
                entry[1] -= 1
                return False
            first = fn not in self._asked
            self._asked.add(fn)
        return not first or earlier_runs is None or earlier_runs(fn)

    def record(self, fn: Callable[..., Any], *, won: bool) -> None:
        with self._lock, contextlib.suppress(TypeError):
            if won:
                self._lost.pop(fn, None)
                return
            losses = self._lost.get(fn, [0, 0])[0] + 1
            self._lost[fn] = [losses, min(2**losses - 1, MOST_UNTRIED)]
