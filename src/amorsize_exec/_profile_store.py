"""Remembered profiles: what a function's items cost in earlier runs, kept on disk.

A cold script knows nothing of its function until its sample has run, and a costly function's
sample (one 50 ms item) runs while no pool exists yet. With a profile remembered from an
earlier run, ``MapCall`` starts the pool at once and sends it the next items while the first
is sampled here (``MapCall._send_ahead``). The profile only starts work early: the decision is
still taken on this run's own sample, so a stale entry costs at most a pool started for nothing.

The file is plain JSON (never pickle: a cache file must not be able to run code), written
atomically (a temporary file renamed over it), readable by the user alone (0600), in the
user's cache directory (``_config.cache_dir``). A corrupt file, or one written on another
machine or Python, is ignored with a DEBUG line. Entries are keyed by the function's module,
qualified name and bytecode (an edited function is a new entry); only functions whose items
are costly enough to send ahead are written, and functions whose items mostly wait (one
sampled item then suffices, ``_head_start``; their pickling may be unmeasured: threads need
none, and the entry says so), and functions whose thread trial won (``remember_thread_win``:
a cold run of them goes to threads unsampled), and those whose thread trials lost
(``remember_thread_loss``: after two losses in a row, later runs try less often).
``Settings.remember_profiles = 0`` turns it off.

The file also keeps the machine's measured pool costs (``recall_calibration``): measuring them
takes 7 round trips and 3 one-megabyte transfers on the pool a map has just started, 30-80 ms
while its second worker still boots, which a cold script paid on every run (a 200-item numpy
map of ~170 ms then lost to its loop). They are trusted for ``_CALIBRATION_MAX_AGE_S``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import sys
import tempfile
import threading
import time
import types
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._config import Settings, cache_dir
from ._stats import SampleStats, mostly_waits
from ._trial_outcomes import MOST_UNTRIED

logger = logging.getLogger(__name__)

_VERSION = 1
#: Entries kept; the least recently saved go first.
_MAX_ENTRIES = 256
#: The figures remembered: what the cost model reads to decide whether a pool pays.
_FIELDS = (
    "compute_s",
    "cpu_s",
    "cv",
    "max_s",
    "arg_bytes",
    "result_bytes",
    "serialize_s",
    "callable_serialize_s",
)
#: An entry is rewritten only when the item time moved by more than this fraction.
_REWRITE_CHANGE = 0.25
#: An entry's fields: the speedup of a thread trial that won (``remember_thread_win``), and
#: the trials lost in a row with the runs left untried (``remember_thread_loss``).
_THREADS_WON = "threads_won"
_THREADS_LOST = "threads_lost"
#: Remembered pool costs older than this are measured again (a machine's load and kernel move).
_CALIBRATION_MAX_AGE_S = 24 * 3600.0


class ProfileStore:
    """One JSON file of remembered profiles (``path=None``: remembers nothing)."""

    def __init__(self, path: Path | None, *, costly_s: float, waits_below: float) -> None:
        self.path = path
        self._costly_s = costly_s  # items under this are not worth remembering
        self._waits_below = waits_below  # CPU share under which an item mostly waits
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] | None = None  # read on first use
        self._calibration: dict[str, Any] = {}  # the machine's pool costs, read with them
        #: Each function's key, hashed once (a map of a fresh executor asks for it).
        self._keys: weakref.WeakKeyDictionary[Callable[..., Any], str | None] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> ProfileStore:
        """The process's store for the settings' cache file: read once per process, not once
        per executor (a service may make one per request)."""
        costly_s, waits_below = settings.send_ahead_above_s, settings.waiting_cpu_fraction
        if not settings.remember_profiles:
            return cls(None, costly_s=costly_s, waits_below=waits_below)
        path = cache_dir() / "profiles.json"
        with _SHARED_LOCK:
            shared = _SHARED.get((path, costly_s, waits_below))
            if shared is None:
                shared = cls(path, costly_s=costly_s, waits_below=waits_below)
                _SHARED[(path, costly_s, waits_below)] = shared
            return shared

    def recall(self, fn: Callable[..., Any]) -> SampleStats | None:
        """``fn``'s items as an earlier run measured them (``None``: not remembered)."""
        if self.path is None:
            return None
        with self._lock:
            entry = self._lookup(fn)[1]
        return None if entry is None else _stats_of(entry)

    def _lookup(self, fn: Callable[..., Any]) -> tuple[str | None, dict[str, Any] | None]:
        """Under the lock: ``fn``'s key and its entry (``None`` for either if there is none)."""
        key = self._key(fn)
        return key, None if key is None else self._loaded().get(key)

    def remember(self, fn: Callable[..., Any], stats: SampleStats) -> None:
        """Keep ``fn``'s figures if its items are costly (or were) or mostly wait, and they
        moved (the item time, or whether they wait)."""
        waits = self._waits(stats.cpu_s, stats.compute_s)
        if self.path is None or not stats.picklable or not (stats.pickling_measured or waits):
            return
        with self._lock:
            key, old = self._lookup(fn)
            if key is None:
                return
            entries = self._loaded()
            if old is None and stats.compute_s < self._costly_s and not waits:
                return
            old_s = None if old is None else _number(old.get("compute_s"))
            old_cpu_s = None if old is None else _number(old.get("cpu_s"))
            if (
                old_s is not None
                and _close(old_s, stats.compute_s)
                and self._waits(old_cpu_s, old_s) == waits
            ):
                return
            entries[key] = _entry(fn, stats, old)
            self._write(entries)

    def recall_thread_win(self, fn: Callable[..., Any]) -> float | None:
        """The speedup of ``fn``'s last thread trial in an earlier run, if it won (``None``:
        none won, or the win was forgotten since)."""
        if self.path is None:
            return None
        with self._lock:
            entry = self._lookup(fn)[1]
        if entry is None or _stats_of(entry) is None:
            return None
        return _number(entry.get(_THREADS_WON)) or None

    def remember_thread_win(
        self, fn: Callable[..., Any], stats: SampleStats, speedup: float
    ) -> None:
        """Keep that ``fn``'s items ran ``speedup`` times faster on threads than serially
        (``stats``: the serial pace), whatever their cost: a cold run then starts on threads
        (``_head_start.threads_first``). Earlier losses are forgotten."""
        if self.path is None or not stats.picklable:
            return
        with self._lock:
            key, old = self._lookup(fn)
            if key is None:
                return
            entries = self._loaded()
            if (
                old is not None
                and _number(old.get(_THREADS_WON))
                and _close(_number(old.get("compute_s")), stats.compute_s)
            ):
                return  # a win on the same figures: nothing to write
            entries[key] = _entry(fn, stats, old)
            entries[key][_THREADS_WON] = speedup
            entries[key].pop(_THREADS_LOST, None)
            self._write(entries)

    def remember_thread_loss(self, fn: Callable[..., Any], stats: SampleStats | None) -> None:
        """Threads lost for ``fn`` (a trial, or a re-check of their pace): the win is
        forgotten, and after k losses in a row the next 2**(k-1) - 1 runs do not try threads
        (``trial_due_this_run``). Cold SVDs, which threads never sped up, took 249 ms with a
        trial each run against 232 without (loop 225; medians of 10 fresh interpreters,
        alternated). One loss more than ``TrialOutcomes`` allows within an executor: a fresh
        process's threads can lose where the next one's win (cold solves, which threads ran
        1.5-2x faster in most runs, lost two trials in a row in one benchmark run, and 2**k - 1
        then left three runs at the loop's pace)."""
        if self.path is None:
            return
        with self._lock:
            key, old = self._lookup(fn)
            if key is None:
                return
            entries = self._loaded()
            if old is None:
                if stats is None or not stats.picklable:
                    return
                old = entries[key] = _entry(fn, stats, None)
            old.pop(_THREADS_WON, None)
            losses = _losses(old)[0] + 1
            old[_THREADS_LOST] = [losses, min(2 ** (losses - 1) - 1, MOST_UNTRIED)]
            self._write(entries)

    def trial_due_this_run(self, fn: Callable[..., Any]) -> bool:
        """Whether this run tries threads for ``fn`` (else it counts as one run untried)."""
        if self.path is None:
            return True
        with self._lock:
            entry = self._lookup(fn)[1]
            if entry is None:
                return True
            losses, untried = _losses(entry)
            if untried <= 0:
                return True
            entry[_THREADS_LOST] = [losses, untried - 1]
            self._write(self._loaded())
            return False

    def recall_calibration(self) -> dict[str, float]:
        """The pool costs an earlier run measured on this machine, by ``MachineProfile`` field
        (empty: none, or older than a day)."""
        if self.path is None:
            return {}
        with self._lock:
            self._loaded()
            saved = _number(self._calibration.get("saved"))
            figures = self._calibration.get("figures")
        if saved is None or not isinstance(figures, dict):
            return {}
        if not 0 <= time.time() - saved <= _CALIBRATION_MAX_AGE_S:
            return {}
        read = {name: _number(value) for name, value in figures.items() if isinstance(name, str)}
        return {name: value for name, value in read.items() if value is not None}

    def remember_calibration(self, figures: dict[str, float]) -> None:
        """Keep the pool costs just measured (``MachineProfile`` fields) for later runs."""
        if self.path is None or not figures:
            return
        with self._lock:
            entries = self._loaded()
            self._calibration = {"figures": dict(figures), "saved": time.time()}
            self._write(entries)

    def _waits(self, cpu_s: float | None, compute_s: float) -> bool:
        return cpu_s is not None and mostly_waits(cpu_s, compute_s, self._waits_below)

    def _key(self, fn: Callable[..., Any]) -> str | None:
        try:
            return self._keys[fn]
        except KeyError:
            key = self._keys[fn] = function_key(fn)
            return key
        except TypeError:  # not weak-referenceable
            return function_key(fn)

    def _loaded(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict[str, dict[str, Any]]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.debug("remembered profiles %s ignored: %r", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            logger.debug("remembered profiles %s ignored: not version %d", self.path, _VERSION)
            return {}
        if data.get("machine") != machine_key():
            logger.debug("remembered profiles %s ignored: another machine or Python", self.path)
            return {}
        calibration = data.get("calibration")
        self._calibration = calibration if isinstance(calibration, dict) else {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, dict)}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        assert self.path is not None
        if len(entries) > _MAX_ENTRIES:
            newest = sorted(
                entries, key=lambda k: _number(entries[k].get("saved")) or 0.0, reverse=True
            )
            for key in newest[_MAX_ENTRIES:]:
                del entries[key]
        data = {
            "version": _VERSION,
            "machine": machine_key(),
            "entries": entries,
            "calibration": self._calibration,
        }
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(
                dir=self.path.parent, prefix=".profiles-", suffix=".json"
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
                    json.dump(data, file)
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:  # a read-only home: the run goes on, unremembered
            logger.debug("remembered profiles not written to %s: %r", self.path, exc)


#: One store per cache file and threshold, shared by the process's executors (``for_settings``).
_SHARED: dict[tuple[Path, float, float], ProfileStore] = {}
_SHARED_LOCK = threading.Lock()


def function_key(fn: Callable[..., Any]) -> str | None:
    """A stable key for a Python function: module, qualified name and bytecode (``None`` for
    builtins and other callables without code, which are not remembered)."""
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    digest = hashlib.sha256()
    digest.update(f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', '')}".encode())
    _hash_code(digest, code)
    return digest.hexdigest()[:32]


def _hash_code(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # its repr holds an address: hash it instead
            _hash_code(digest, const)
        else:
            digest.update(repr(const).encode())


def machine_key() -> str:
    """Profiles hold on the machine and Python that measured them."""
    return f"{platform.node()}|{os.cpu_count()}|{sys.implementation.cache_tag}"


def _stats_of(entry: dict[str, Any]) -> SampleStats | None:
    """An entry's figures (``None``: missing, corrupt or negative)."""
    read = {name: _number(entry.get(name)) for name in _FIELDS}
    figures = {name: value for name, value in read.items() if value is not None}
    measured = entry.get("pickling_measured", True)  # version 1 wrote only measured ones
    if len(figures) < len(_FIELDS) or not isinstance(measured, bool):
        return None  # missing, corrupt or negative: not trusted
    return SampleStats(
        items=1,
        compute_s=figures["compute_s"],
        cpu_s=figures["cpu_s"],
        cv=figures["cv"],
        max_s=figures["max_s"],
        arg_bytes=figures["arg_bytes"],
        result_bytes=figures["result_bytes"],
        serialize_s=figures["serialize_s"],
        callable_serialize_s=figures["callable_serialize_s"],
        pickling_measured=measured,
    )


def _entry(
    fn: Callable[..., Any], stats: SampleStats, old: dict[str, Any] | None
) -> dict[str, Any]:
    """``fn``'s entry for ``stats``; thread trials' outcomes in ``old`` are kept (they say how
    the items run, not what they cost)."""
    entry: dict[str, Any] = {name: getattr(stats, name) for name in _FIELDS}
    entry["pickling_measured"] = stats.pickling_measured
    entry["name"] = getattr(fn, "__qualname__", "?")
    entry["saved"] = time.time()
    for outcome in (_THREADS_WON, _THREADS_LOST):
        if old is not None and outcome in old:
            entry[outcome] = old[outcome]
    return entry


def _losses(entry: dict[str, Any]) -> tuple[int, int]:
    """An entry's thread trials lost in a row and runs left untried ((0, 0) if none, or not
    two whole numbers)."""
    lost = entry.get(_THREADS_LOST)
    if (
        isinstance(lost, list)
        and len(lost) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lost)
    ):
        return min(lost[0], 64), min(lost[1], MOST_UNTRIED)
    return 0, 0


def _close(old_s: float | None, new_s: float) -> bool:
    return old_s is not None and old_s > 0 and abs(new_s - old_s) <= _REWRITE_CHANGE * old_s


def _number(value: object) -> float | None:
    """A finite number >= 0 from the file, or ``None`` (a hand-edited or corrupt entry)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None
