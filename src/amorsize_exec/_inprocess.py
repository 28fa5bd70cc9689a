"""Threads for ``submit``'s in-process calls: none waits behind a call it does not depend on.

A thread per call would cost more than the cheap calls that run here (a burst of 2,000 trivial
submits took 8x ``ThreadPoolExecutor(1)`` on 32 threads), and one thread makes a fast call wait
for a slow one. So one thread serves calls in order, and a watcher starts another whenever every
thread has been on its current call for ``stall_s`` while calls wait (up to ``max_threads``): a
slow call delays those queued behind it by ``stall_s`` at most. Threads beyond the first exit
after ``idle_exit_s`` without work.

Threads are daemons, drained at interpreter exit as ``ThreadPoolExecutor``'s are (the
``threading`` exit hook): a call accepted before exit still runs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

_Call = Callable[[], None]


class InProcessThreads:
    """Runs ``call()`` on threads of this process (see the module docstring)."""

    def __init__(
        self, *, max_threads: int, stall_s: float, idle_exit_s: float = 1.0, name: str
    ) -> None:
        self._max_threads = max(1, max_threads)
        self._stall_s = stall_s
        self._idle_exit_s = idle_exit_s
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # serving threads wait here for calls
        self._stalls = threading.Condition(self._lock)  # the watcher waits here
        self._calls: deque[_Call] = deque()
        self._busy_since: dict[int, float] = {}  # thread id -> start of its current call
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._starting = 0  # threads started that have not yet looked for a call
        self._watcher: threading.Thread | None = None
        self._closed = False
        _live.add(self)

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._calls.append(call)
            # An idle thread counts as idle until it has woken: compare with the calls queued.
            if len(self._calls) <= self._idle:
                self._work.notify()
            elif not self._threads:
                self._start_thread()
            elif len(self._threads) < self._max_threads:
                self._watch()

    def _start_thread(self) -> None:
        """(Lock held.)"""
        thread = threading.Thread(
            target=self._serve, name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.add(thread)
        self._starting += 1
        thread.start()

    def _watch(self) -> None:
        """Every thread is busy and a call waits: have the watcher look for a stall. (Lock held.)"""
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch_for_stalls, name=f"{self._name}-watcher", daemon=True
            )
            self._watcher.start()
        else:
            self._stalls.notify()

    def _serve(self) -> None:
        me = threading.get_ident()
        with self._lock:
            self._starting -= 1
            while True:
                if not self._calls:
                    if self._closed:
                        break
                    self._idle += 1
                    woken = self._work.wait(None if len(self._threads) == 1 else self._idle_exit_s)
                    self._idle -= 1
                    if not woken and not self._calls and len(self._threads) > 1:
                        break  # an extra thread with nothing to do
                    continue
                call = self._calls.popleft()
                self._busy_since[me] = time.monotonic()
                self._lock.release()
                try:
                    call()
                finally:
                    del call  # nothing of a finished call stays alive here
                    self._lock.acquire()
                    del self._busy_since[me]
            self._threads.discard(threading.current_thread())

    def _watch_for_stalls(self) -> None:
        with self._lock:
            while not self._closed:
                waiting = len(self._calls) > self._idle + self._starting
                if not waiting or len(self._threads) >= self._max_threads:
                    self._stalls.wait()  # submit() wakes it when a call has to wait
                    continue
                # One more thread only when every thread has been on its call for stall_s.
                youngest = max(self._busy_since.values(), default=time.monotonic())
                waited = time.monotonic() - youngest
                if not self._starting and waited >= self._stall_s:
                    self._start_thread()
                else:
                    self._stalls.wait(max(self._stall_s - waited, self._stall_s / 4))

    def shutdown(self, wait: bool) -> None:
        """No new calls; queued ones still run (the caller cancels what it wants cancelled)."""
        with self._lock:
            self._closed = True
            self._work.notify_all()
            self._stalls.notify_all()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


_live: weakref.WeakSet[InProcessThreads] = weakref.WeakSet()


def _drain_at_exit() -> None:
    for lane in list(_live):
        lane.shutdown(wait=True)


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads, and their locks may be held: its exit
    must not touch the parent's lanes."""
    _live.clear()


# As concurrent.futures.thread does: runs before the interpreter joins non-daemon threads.
with contextlib.suppress(RuntimeError):  # imported while the interpreter shuts down
    threading._register_atexit(_drain_at_exit)  # type: ignore[attr-defined]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
