"""Top-level (picklable) functions that fail in the ways services meet."""

from __future__ import annotations

import ctypes
import faulthandler
import threading
import time


def raise_value_error(x: int) -> int:
    raise ValueError(f"bad item {x}")


class UnpicklableError(Exception):
    """An exception holding a lock: it cannot travel back from a worker."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()


def raise_unpicklable(x: int) -> int:
    raise UnpicklableError(f"item {x} holds a lock")


def fail_on_multiples(x: int, k: int) -> int:
    """x * 3, or ValueError / KeyError for multiples of k (two types, to check the type too)."""
    if k and x % k == 0:
        raise (ValueError if x % 2 else KeyError)(x)
    return x * 3


def broken_initializer() -> None:
    raise RuntimeError("initializer failed on purpose")


def identity(x: object) -> object:
    return x


def segfault(x: int) -> int:
    # pytest enables faulthandler on the terminal's own stderr, and a forked worker inherits it:
    # each deliberate crash would print a "Fatal Python error" traceback past pytest's capture.
    # The parent reports the signal anyway (BrokenProcessPool names SIGSEGV).
    faulthandler.disable()
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return x


def sleep_then_return(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def raise_memory_error(x: int) -> int:
    raise MemoryError(f"item {x} wanted too much")


def spin_then_return(x: object, seconds: float) -> object:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass
    return x
