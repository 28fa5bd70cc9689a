"""``AutoExecutor``: a ``ProcessPoolExecutor`` that measures before it parallelises.

The executor keeps the contract only, as CPython's executors do: argument checks with the
stdlib's messages, its lock and state, ``map``/``submit``/``shutdown``. Where items run is
decided elsewhere::

    map(fn, *iterables)            checks; args = zip(*iterables) stays lazy
      ├─ isolated ──────────────── IsolatedMap: every item in the pool, first ones timed there
      ├─ lane="serial" / nested ── SerialLane.over: every item here
      ├─ lane="thread" ─────────── ThreadLane: every item on threads
      ├─ lane="cluster" ────────── IsolatedMap on the ClusterLane: every item on Dask
      └─ auto ──────────────────── MapCall: sample here, plan, run in a lane, re-plan
         (with a timeout, what may run here runs on a DeadlineStream thread)

    submit(fn, ...)                SubmitRouter: a callable's first call timed in a worker;
                                   cheap callables here (InProcessThreads), costly in the pool
                                   (or on the cluster, if it has more threads)

Everything the calls share (settings, probe, sampler, lanes, the decision log, memory across
calls) is one ``Runtime``; see ARCHITECTURE.md for the whole flow.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import replace
from typing import Any

from ._backends import PrivatePool, WorkerPools
from ._config import LANES, Lane, Settings, in_worker_process
from ._deadline import DeadlineStream
from ._decision import Decision, DecisionRecord
from ._isolated import IsolatedMap
from ._lanes import MapOptions, MapRequest
from ._lanes._cluster import connect
from ._machine import MachineProbe, default_probe
from ._map_call import MapCall
from ._progress import Progress, check_progress, with_progress
from ._runtime import Runtime
from ._submit import SubmitRouter

#: A map's in-process pipeline, given its options, where sampled results go at once (``None``:
#: kept for the replay) and whether its consumer is still there (``None``: it is, always).
_InProcessStream = Callable[
    [MapOptions, "Callable[[Any], None] | None", "Callable[[], bool] | None"], Iterator[Any]
]


class AutoExecutor(Executor):
    """Drop-in for ``concurrent.futures.ProcessPoolExecutor`` that is never slower than a loop.

    Args:
        max_workers: most worker processes to use (default: usable CPUs); with
            ``lane="thread"``, the number of threads (default: the stdlib thread pool's).
        mp_context: a ``multiprocessing`` context; its start method is used for workers.
        initializer: called in each worker at start (the pool is then private to this executor).
        initargs: arguments for ``initializer``.
        max_tasks_per_child: restart workers after this many tasks (Python >= 3.11; the pool is
            then a private stdlib ``ProcessPoolExecutor``).
        lane: ``"auto"`` (measure and decide), or forced: ``"serial"`` (in this process),
            ``"thread"`` (threads of this process, for work that waits), ``"process"`` (the
            pool; the model still sizes chunks, from the first items timed in workers) or
            ``"cluster"`` (the Dask cluster of ``client``, sized the same way).
        isolate: never run ``fn`` in this process: ``map`` times its first items in the
            workers and the model picks worker count and chunk size from them; every
            ``submit`` runs in a worker. Implied by ``initializer`` (``fn`` must not run where
            it has not run) and by ``lane="process"``.
        strict: if a function or argument cannot be pickled, raise ``TypeError`` naming it
            instead of running serially (the default, logged and kept in ``last_decision``).
        settings: tunables; default ``Settings.from_env()``.
        probe: machine probe; default the process-wide ``SystemProbe``.
        pools: owner of the shared warm pools; default the process-wide one.
        client: a ``distributed.Client``, or a Dask scheduler's address (the ``dask`` extra):
            the cluster becomes one more lane, taken when the model predicts it beats the
            local ones. A client given is never closed here; one made from an address is
            closed at ``shutdown``.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
        lane: Lane = "auto",
        isolate: bool = False,
        strict: bool = False,
        settings: Settings | None = None,
        probe: MachineProbe | None = None,
        pools: WorkerPools | None = None,
        client: Any = None,
    ) -> None:
        _check_constructor_args(
            max_workers, mp_context, initializer, max_tasks_per_child, lane, isolate=isolate
        )
        _check_client_args(client, lane, initializer)
        self._max_workers_asked = max_workers
        settings = settings or Settings.from_env()
        probe = probe or default_probe()
        private = None
        if initializer is not None or max_tasks_per_child is not None:
            private = PrivatePool(
                max_workers or probe.profile().usable_cpus,
                mp_context=mp_context,
                initializer=initializer,
                initargs=initargs,
                max_tasks_per_child=max_tasks_per_child,
            )
        owns_client = False
        if client is not None:
            client, owns_client = connect(client)
        self._runtime = Runtime(
            settings,
            probe,
            lane=lane,
            max_workers=max_workers,
            strict=strict,
            # fn never runs here: the workers' setup (initializer) is not this process's.
            isolated=bool(isolate) or initializer is not None or lane in ("process", "cluster"),
            nested=in_worker_process() or multiprocessing.current_process().daemon,
            start_method=mp_context.get_start_method() if mp_context else "loky",
            pools=pools,
            private=private,
            client=client,
            owns_client=owns_client,
        )
        self._lock = threading.Lock()
        self._shutdown = False
        self._router = SubmitRouter(self._runtime)

    # --- public API -----------------------------------------------------------------------

    @property
    def _max_workers(self) -> int | None:
        """The ``max_workers`` asked for; with a cluster and none asked, the cluster's threads
        (``dask.compute(scheduler=executor)`` sizes its window from this)."""
        cluster = self._runtime.cluster
        if self._max_workers_asked is None and cluster is not None:
            return cluster.threads()
        return self._max_workers_asked

    @property
    def last_decision(self) -> DecisionRecord | None:
        """The most recent decision of ``map`` or ``submit`` (``None`` before the first)."""
        return self._runtime.last_decision

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
        progress: Progress = None,
    ) -> Iterator[Any]:
        """Ordered results of ``fn`` over ``zip(*iterables)``, like ``ProcessPoolExecutor.map``.

        Input is read lazily with bounded look-ahead (an endless generator works), as with
        ``buffersize`` in Python 3.14; work starts at the call. An exception raised by ``fn``
        for item *i* is raised when the consumer reaches position *i*. ``timeout`` counts from
        this call. ``chunksize=None`` lets the cost model choose. ``progress=True`` draws a
        tqdm bar (the ``progress`` extra), a callable gets ``(done, total)`` as results are
        delivered (``total`` is ``None`` for an input without a length).
        """
        _check_map_args(fn, timeout, chunksize, buffersize)
        check_progress(progress)
        options = MapOptions(
            None if timeout is None else time.monotonic() + timeout, chunksize, buffersize
        )
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        iterators = [iter(it) for it in iterables]
        if not iterators:
            return iter(())
        total = _known_length(iterables)
        results = self._map(MapRequest(fn, iterators, total, options))
        return with_progress(results, progress, total, self._lane_text)

    def _lane_text(self) -> str | None:
        """Where the last decision runs the items, for a progress bar (``None`` before one)."""
        record = self._runtime.last_decision
        return None if record is None else record.lane_text

    def _map(self, request: MapRequest) -> Iterator[Any]:
        """``map`` once its arguments are checked: who runs it."""
        rt, fn, options = self._runtime, request.fn, request.options
        if rt.isolated:
            return IsolatedMap(rt, request).results()
        if rt.runs_in_process_only:
            why = "nested inside a worker process" if rt.nested else "lane='serial' was asked"
            self._record_forced(fn, Decision.serial(why), request.total)
            return self._here(options, lambda o, _, __: rt.serial.over(fn, request.iterators))
        if rt.forced_lane == "thread":
            threads = self._max_workers_asked or rt.settings.thread_lane_max_threads
            decision = Decision(
                "thread", threads, options.chunksize or 1, 1.0, 0.0, "lane='thread' was asked"
            )
            self._record_forced(fn, decision, request.total)
            return rt.threads.run(fn, request.args(), decision, options)
        return self._here(
            options,
            lambda o, publish, wanted: MapCall(rt, replace(request, options=o)).results(
                publish, wanted
            ),
        )

    def _record_forced(self, fn: Callable[..., Any], decision: Decision, total: int | None) -> None:
        self._runtime.record(
            "map", fn, decision, stats=None, profile=None, total=total, remaining=total, forced=True
        )

    @staticmethod
    def _here(options: MapOptions, stream: _InProcessStream) -> Iterator[Any]:
        """A map whose items may run in this process: on the consumer's thread as it reads
        (as fast as a loop); with a timeout, on a thread of its own, so that the deadline holds
        while an item runs here (``DeadlineStream``; the stdlib pool raises at the deadline
        whatever its workers do), its sampled results handed over one by one."""
        if options.deadline is None:
            return stream(options, None, None)
        untimed = replace(options, deadline=None)
        return iter(
            DeadlineStream(
                lambda publish, wanted: stream(untimed, publish, wanted), options.deadline
            )
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)``; returns a ``Future`` at once.

        The task never runs on the caller's thread: cheap callables run on one in-process
        thread, costly ones in the pool (decided per callable from its measured calls).
        """
        if not callable(fn):
            raise TypeError(f"{type(fn).__name__!r} object is not callable")
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            return self._router.submit(fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; optionally cancel what has not started; optionally wait.

        Shared warm pools are not stopped (other executors may be using them); a private pool
        is, once its last map ends. Maps already under way go on to the end (input keeps
        being read as consumed). With ``cancel_futures``, a map running in the pool or on
        threads stops submitting: its positions not yet started raise ``CancelledError``; a
        map running in-process is not cancelled (it runs on the consumer's thread, as it is
        consumed). On a Dask cluster, tasks not yet running are cancelled (the client cannot
        see which have started: the oldest unfinished ones, one per worker thread, count as
        running); a client made from an address is closed once the work is waited for.
        """
        rt = self._runtime
        with self._lock:
            self._shutdown = rt.closed = True
        streams = rt.streams.snapshot()
        if cancel_futures:
            rt.streams.cancel(streams)
        self._router.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            rt.streams.wait(streams)
        rt.processes.shutdown(wait=wait)
        if rt.cluster is not None and wait:  # else a client we made closes when collected
            rt.cluster.shutdown()


def _known_length(iterables: tuple[Iterable[Any], ...]) -> int | None:
    """``min(len(...))`` if every input has a length, else ``None`` (generators)."""
    lengths = []
    for it in iterables:
        try:
            lengths.append(len(it))  # type: ignore[arg-type]
        except TypeError:
            return None
    return min(lengths)


def _check_constructor_args(
    max_workers: object,
    mp_context: Any,
    initializer: object,
    max_tasks_per_child: object,
    lane: object,
    *,
    isolate: object,
) -> None:
    """The stdlib's checks and messages, so code that catches them keeps working; then ours."""
    if max_workers is not None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int):
            raise TypeError(f"max_workers must be an int or None, not {type(max_workers).__name__}")
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if max_tasks_per_child is not None:
        if sys.version_info < (3, 11):
            raise TypeError("max_tasks_per_child needs Python 3.11 or newer")
        if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
            raise TypeError("max_tasks_per_child must be an integer")
        if max_tasks_per_child <= 0:
            raise ValueError("max_tasks_per_child must be >= 1")
        if max_tasks_per_child > 1:
            # The stdlib pool (the only one with worker recycling) deadlocks once a worker
            # exits at its limit with tasks queued, and we always queue a window of chunks.
            raise ValueError(
                "max_tasks_per_child > 1 deadlocks the stdlib process pool "
                "(CPython gh-115634, Python 3.11-3.14); use 1 or None"
            )
        if mp_context is not None and mp_context.get_start_method() == "fork":
            raise ValueError(
                "max_tasks_per_child is incompatible with the 'fork' multiprocessing start "
                "method; supply a different mp_context."
            )
    if lane not in LANES:
        raise ValueError(f"lane must be one of {LANES}, not {lane!r}")
    if lane == "serial" and (isolate or initializer is not None):
        why = "isolate=True" if isolate else "an initializer (fn must not run where it did not)"
        raise ValueError(f"lane='serial' runs fn in this process, which {why} forbids")


def _check_client_args(client: object, lane: object, initializer: object) -> None:
    if lane == "cluster" and client is None:
        raise ValueError("lane='cluster' needs a Dask cluster: pass client=")
    if client is not None and initializer is not None:
        raise ValueError(
            "an initializer runs in local workers only, not on the Dask cluster of client=; "
            "use the client's worker plugins (Client.register_plugin) instead"
        )


def _check_map_args(fn: object, timeout: object, chunksize: object, buffersize: object) -> None:
    if not callable(fn):
        raise TypeError(f"{type(fn).__name__!r} object is not callable")
    if timeout is not None and not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
    if chunksize is not None:
        if isinstance(chunksize, bool) or not isinstance(chunksize, int):
            raise TypeError("chunksize must be an integer or None")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
    if buffersize is not None:
        if isinstance(buffersize, bool) or not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
