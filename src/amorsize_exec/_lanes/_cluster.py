"""The cluster lane: a map's chunks, or ``submit``'s calls, as tasks on a Dask cluster.

``AutoExecutor(client=...)`` takes a ``distributed.Client`` (never closed by us) or a
scheduler's address (we connect, and close that client at ``shutdown``). We build on Dask's
own futures rather than ``Client.get_executor()``, which ignores ``chunksize``, rejects plain
iterators and has no ``cancel_futures`` (design §8):

* chunks are ``client.submit(run_chunk, fn, chunk, pure=False)``: with Dask's default
  ``pure=True``, equal chunks would share one key and run once;
* ``ChunkedMap`` drives them as it drives a local pool: a bounded window, results in input
  order, an exception at its position, lazy input, ``timeout`` and ``cancel``;
* ``DaskChunk`` gives a Dask future the stdlib's ``result``/``cancel`` semantics: timeouts
  raise ``concurrent.futures.TimeoutError``, and a task the cluster lost (its scheduler gone,
  the client closed) raises ``ClusterLostError`` instead of looking cancelled by the user.

A worker that dies mid-task is Dask's business: the scheduler reruns its tasks elsewhere (so
side effects of that chunk's items may repeat), and a task that killed
``distributed.scheduler.allowed-failures`` + 1 workers (4 by default) fails with Dask's
``KilledWorker``, raised at its position.

The cluster's costs (``ClusterCosts``: threads, round trip, per-task cost, bandwidth) are
measured once per client by ``ClusterProbe`` (``_cluster_probe``), only when a job is big
enough that the cluster could beat the local lanes even at the optimistic priors.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import pickle
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._backends._worker import call, run_chunk
from .._cost_cluster import ClusterCosts
from .._errors import ClusterLostError
from ._cluster_probe import ClusterProbe, default_cluster_probe

if sys.version_info >= (3, 11):
    _WAIT_TIMEOUTS: tuple[type[BaseException], ...] = (TimeoutError,)
else:  # asyncio's own class before 3.11; importing asyncio costs every user ~11 ms, so only here
    from asyncio import TimeoutError as _AsyncioTimeout

    _WAIT_TIMEOUTS = (TimeoutError, _AsyncioTimeout)

if TYPE_CHECKING:
    from .._backends import ChunkObserver
    from .._config import Settings
    from .._decision import Decision
    from . import LiveStreams, MapOptions

#: Time given to fetch a finished task's result once the deadline has passed.
_FETCH_S = 0.01


def connect(client: Any) -> tuple[Any, bool]:
    """The ``distributed.Client`` to use, and whether we made it (and so must close it)."""
    try:
        import distributed  # noqa: PLC0415  (the [dask] extra, only when a client is asked for)
    except ImportError as exc:
        raise ImportError(
            "client= needs Dask distributed: pip install 'amorsize-exec[dask]'"
        ) from exc
    if isinstance(client, str):
        made = distributed.Client(client, set_as_default=False)  # type: ignore[no-untyped-call]
        return made, True
    if isinstance(client, distributed.Client):
        return client, False
    raise TypeError(
        f"client must be a distributed.Client or a scheduler address, not {type(client).__name__}"
    )


class ClusterLane:
    """An executor's view of its Dask cluster."""

    def __init__(
        self,
        settings: Settings,
        streams: LiveStreams,
        client: Any,
        *,
        owned: bool,
        probe: ClusterProbe | None = None,
    ) -> None:
        self._settings = settings
        self._streams = streams
        self.client = client
        self._owned = owned
        self._probe = probe or default_cluster_probe()
        self._measuring: threading.Thread | None = None
        self._lock = threading.Lock()
        self._threads: int | None = None
        self._running = _Running(self.threads)

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def threads(self) -> int:
        """Worker threads in the cluster (asked once: one round trip, unless its costs are
        known)."""
        if self._threads is None:
            known = self._probe.known(self.client)
            self._threads = known.threads if known else sum(self.client.nthreads().values())
        return self._threads

    def costs(self) -> ClusterCosts:
        """The cluster's measured costs (measured now if this client's are not yet known),
        never below the optimistic ``floor`` (a noisy measurement can come out under it, and
        the floor decides when measuring is worth it)."""
        measured, floor = self._probe.costs(self.client), self.floor()
        return replace(
            measured,
            roundtrip_s=max(measured.roundtrip_s, floor.roundtrip_s),
            s_per_byte=max(measured.s_per_byte, floor.s_per_byte),
        )

    def known_costs(self) -> ClusterCosts | None:
        """The costs if measured; else ``None``, and they are measured in the background (for
        ``submit``, which must not wait for round trips to the scheduler)."""
        if self._probe.known(self.client) is not None:
            return self.costs()
        with self._lock:
            if self._measuring is None:
                self._measuring = threading.Thread(
                    target=self._measure_quietly, name="amorsize-cluster-probe", daemon=True
                )
                self._measuring.start()
        return None

    def _measure_quietly(self) -> None:
        try:
            self.costs()
        except Exception:  # an unreachable cluster: submit keeps to the local lanes
            return

    def floor(self) -> ClusterCosts:
        """Optimistic priors: if the cluster loses even with these, nothing is measured."""
        s = self._settings
        return ClusterCosts(
            self.address, 1, s.prior_cluster_roundtrip_s, 0.0, s.prior_cluster_s_per_byte, False
        )

    def run(
        self,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        options: MapOptions,
        observer: ChunkObserver | None = None,
    ) -> Iterator[Any]:
        """Chunks of ``args`` as tasks, a bounded window of them in flight."""
        client, running = self.client, self._running

        def submit_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> Any:
            try:
                task = client.submit(run_chunk, fn, chunk, pure=False)
            except TypeError as exc:  # raised at its position, as the local pools do
                return DaskChunk(None, running, failure=_pickling_error(exc))
            return DaskChunk(task, running)

        return self._streams.start(
            submit_chunk,
            fn,
            args,
            decision=decision,
            options=options,
            settings=self._settings,
            on_close=lambda: None,  # the client is the caller's, or closed at shutdown
            observer=observer,
        )

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[Any]:
        """One call as a task; a stdlib ``Future`` that follows it (``cancel()`` reaches it)."""
        try:
            task = self.client.submit(call, fn, args, kwargs, pure=False)
        except TypeError as exc:
            failed: Future[Any] = Future()
            failed.set_exception(_pickling_error(exc))
            return failed
        proxy = _TaskFuture(task, self._running)
        task.add_done_callback(proxy.settle)
        return proxy

    def shutdown(self) -> None:
        """Close the client if we made it (from an address); never a client the user gave."""
        if self._owned:
            self.client.close()


class DaskChunk:
    """A Dask future with the stdlib ``Future`` methods ``ChunkedMap`` uses (or the error that
    kept a chunk from being submitted: ``failure``)."""

    def __init__(
        self, future: Any, running: _Running, *, failure: BaseException | None = None
    ) -> None:
        self._future = future
        self._running = running
        self._failure = failure
        self._cancelled = False
        if future is not None:
            running.add(self, future)

    def result(self, timeout: float | None = None) -> Any:
        if self._failure is not None:
            raise self._failure
        if self._cancelled:
            raise CancelledError()
        if timeout is not None:  # Dask cannot parse a negative timeout
            if timeout <= 0 and not self._future.done():
                raise concurrent.futures.TimeoutError()
            timeout = max(timeout, _FETCH_S)
        try:
            result = self._future.result(timeout=timeout)
            self._running.discard(self)
            return result
        except CancelledError:
            if self._cancelled:
                raise
            raise _lost(self._future) from None
        except _WAIT_TIMEOUTS:
            if self._future.done():  # not ours: the cluster's (a comm timeout)
                raise _lost(self._future) from None
            raise concurrent.futures.TimeoutError() from None
        except Exception as exc:
            error = _fetch_error(self._future, exc)
            if error is exc:
                raise
            raise error from exc

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            self.result(timeout)
        except BaseException as exc:
            return exc
        return None

    def cancel(self) -> bool:
        """Cancel the task unless it has finished (its result is still delivered) or is
        probably running (``_Running``: it finishes, as in the stdlib's pools)."""
        future = self._future
        if future is None or future.done() or self._running.probably_running(self):
            return False
        self._cancelled = True
        self._running.discard(self)
        with contextlib.suppress(Exception):  # a closed client: nothing left to cancel
            future.cancel()
        return True


#: Dask's errors that mean the cluster, not the task, failed.
_LOST_ERRORS = frozenset({"ClosedClientError", "CommClosedError", "FutureCancelledError"})


def _pickling_error(exc: Exception, what: str = "the task to send it to the workers") -> Exception:
    """Dask's refusal to serialize (a ``TypeError``), as the local pools word it."""
    if not isinstance(exc, TypeError) or "serialize" not in str(exc):
        return exc
    error = pickle.PicklingError(f"Could not pickle {what}.")
    error.__cause__ = exc
    return error


def _fetch_error(future: Any, exc: Exception) -> Exception:
    """What fetching a task's result raised, as the caller should see it: the cluster lost,
    a result that could not be pickled (``PicklingError``, as the stdlib's), else itself."""
    if type(exc).__name__ in _LOST_ERRORS:
        return _lost(future)
    return _pickling_error(exc, "the result to send it back from the worker")


def _lost(future: Any) -> ClusterLostError:
    return ClusterLostError(
        f"the Dask cluster lost task {future.key!r} (status {future.status!r}): its scheduler "
        "is gone or the client was closed"
    )


class _TaskFuture(Future[Any]):
    """A stdlib ``Future`` following one Dask task (``submit`` on the cluster)."""

    def __init__(self, task: Any, running: _Running) -> None:
        super().__init__()
        self._task: Any = task  # held until settled: a Dask future dropped cancels its task
        self._running = running
        running.add(self, task)

    def cancel(self) -> bool:
        """As the stdlib's: not once running (probably, ``_Running``) or done."""
        task = self._task
        if task is not None and self._running.probably_running(self):
            return False
        cancelled = super().cancel()
        if cancelled and task is not None:
            self._running.discard(self)
            with contextlib.suppress(Exception):  # a closed client: nothing left to cancel
                task.cancel()
        return cancelled

    def settle(self, task: Any) -> None:
        """Runs on Dask's callback thread once the task is done, erred or cancelled."""
        self._task = None
        self._running.discard(self)
        if self.done():
            return
        status = task.status
        value, error = None, None
        try:
            if status == "finished":
                value = task.result()
            elif status == "error":
                error = task.exception()
            else:
                error = _lost(task)
        except BaseException as exc:  # the result could not be fetched (or unpickled)
            error = _fetch_error(task, exc) if isinstance(exc, Exception) else exc
        if not self.set_running_or_notify_cancel():
            return
        if error is not None:
            self.set_exception(error)
        else:
            self.set_result(value)


class _Running:
    """Which of a lane's unfinished tasks are probably running: the oldest ``threads`` of them.
    A client cannot see which task a worker has started, and Dask runs tasks in the order they
    were submitted; the stdlib's ``cancel`` (and ``shutdown(cancel_futures=True)``) leaves a
    running call to finish, and so do we (CPython's ``test_cancel_futures`` wants some to)."""

    def __init__(self, threads: Callable[[], int]) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        # Our handle of each task -> its Dask future, in the order of submission (a dict's);
        # held weakly: a map dropped unconsumed, or a Future let go, leaves nothing here.
        self._tasks: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()

    def add(self, handle: object, task: Any) -> None:
        with self._lock:
            self._tasks[handle] = task

    def discard(self, handle: object) -> None:
        with self._lock:
            self._tasks.pop(handle, None)

    def probably_running(self, handle: object) -> bool:
        threads = self._threads()
        with self._lock:
            unfinished = [h for h, task in self._tasks.items() if not task.done()]
        return any(h is handle for h in unfinished[:threads])
