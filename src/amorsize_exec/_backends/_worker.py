"""Code that runs inside worker processes. Kept tiny and import-light: every worker imports it."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle

from .._config import WORKER_ENV_VAR
from .._errors import UnpicklableResultError

#: What a chunk sends back: its results, the exception that stopped it (or ``None``), and the
#: wall and CPU seconds its items took in the worker (what ``ChunkedMap`` re-plans on).
ChunkResult = tuple[list[Any], "BaseException | None", float, float]
#: What a timed call sends back: ``(ok, result or exception, wall seconds in the worker)``.
TimedCall = tuple[bool, Any, float]


def initialize_worker(
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    env: dict[str, str] | None = None,
    blas_threads: int | None = None,
) -> None:
    """Mark the process as ours (nested use then runs serially), set ``env`` (forked workers'
    BLAS thread limits, for libraries loaded from now on), limit the BLAS libraries already
    loaded to ``blas_threads`` (forked from a parent that had loaded them), then run the
    user's initializer."""
    os.environ[WORKER_ENV_VAR] = "1"
    if env:
        os.environ.update(env)
    if blas_threads is not None:
        from ._blas import limit_loaded_libraries  # noqa: PLC0415  (only forked BLAS users)

        limit_loaded_libraries(blas_threads)
    if initializer is not None:
        initializer(*initargs)


def run_chunk(
    fn: Callable[..., Any], chunk: Sequence[tuple[Any, ...]], *, in_thread: bool = False
) -> ChunkResult:
    """Run ``fn`` over a chunk; stop at the first exception and return it with the results so far.

    Returning the results before the failure (instead of raising) is what lets the exception
    surface at its own position, after the results of the items before it. The chunk's wall and
    CPU time come back with it (two clock reads per chunk): the parent sizes later chunks on
    the workers' own timings (``isolate``: the items never run in the parent to be timed).
    ``in_thread``: on a thread of the parent (the thread lane), the exception stays the original
    object (nothing to pickle) and the CPU time is the thread's own.
    """
    cpu_clock = time.thread_time if in_thread else time.process_time
    results: list[Any] = []
    error: BaseException | None = None
    cpu0 = cpu_clock()
    wall0 = time.perf_counter()
    for args in chunk:
        try:
            results.append(fn(*args))
        except Exception as exc:  # BaseException (SystemExit, ...) is the pool's business
            error = exc
            break
    wall_s = time.perf_counter() - wall0
    cpu_s = cpu_clock() - cpu0
    if error is not None and not in_thread:
        error = transportable(error)
    return results, error, wall_s, cpu_s


def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)``: sent as a task so that keywords named ``fn`` or ``self`` reach
    ``fn`` instead of colliding with the pool's own ``submit(fn, *args, **kwargs)``."""
    return fn(*args, **kwargs)


def timed_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> TimedCall:
    """``fn(*args, **kwargs)`` timed in the worker: a callable's first ``submit`` runs here, so
    that a crash is a ``BrokenProcessPool`` and not the caller's death, and its time decides
    where its later calls run. An exception comes back as a value, with its timing."""
    wall0 = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # BaseException (SystemExit, ...) is the pool's business
        return False, transportable(exc), time.perf_counter() - wall0
    return True, result, time.perf_counter() - wall0


def run_pickled_call(payload: bytes) -> Any:
    """One call of a task (``call``, ``timed_call``, ...) sent as cloudpickle bytes (stdlib
    pools, which pickle with ``pickle``: lambdas and closures travel this way)."""
    task, args, kwargs = cloudpickle.loads(payload)
    return task(*args, **kwargs)


def noop() -> None:
    """A task that does nothing: its round trip is the pool's per-task overhead."""


def byte_length(data: bytes) -> int:
    """A task whose argument is large: its round trip measures the pipe's bandwidth."""
    return len(data)


class _RemoteTraceback(Exception):
    """Carries the worker's formatted traceback; shown as the ``__cause__`` of the exception."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _rebuild(exc: BaseException, tb: str) -> BaseException:
    exc.__cause__ = _RemoteTraceback(tb)
    return exc


class _ExceptionWithTraceback:
    """Pickles an exception together with its traceback text (as the stdlib's pool does)."""

    def __init__(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.exc = exc
        self.tb = f'\n"""\n{text}"""'

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.exc, self.tb)


def transportable(exc: BaseException) -> BaseException:
    """The exception, made to survive the trip to the parent with its remote traceback.

    An exception that cannot be pickled becomes ``UnpicklableResultError`` naming its type and
    message, instead of a pickling error that hides the original failure.
    """
    wrapped = _ExceptionWithTraceback(exc)
    try:
        cloudpickle.loads(cloudpickle.dumps(wrapped))
    except Exception as pickling_error:
        replacement = UnpicklableResultError(
            f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} "
            f"(the exception could not be sent back from the worker: {pickling_error!r})"
        )
        return _ExceptionWithTraceback(replacement)  # type: ignore[return-value]
    return wrapped  # type: ignore[return-value]
