"""Run CPython's own ``concurrent.futures`` process-pool tests against ``AutoExecutor``.

Why: ``AutoExecutor`` claims to be a drop-in ``ProcessPoolExecutor``. CPython's test suite is
the most complete statement of that contract there is (wait, as_completed, shutdown, crashes
in workers, initializers), so this script plugs ``AutoExecutor`` into those tests as the
executor type of their process-pool classes and reports what passes.

How to run::

    export AMORSIZE_CPYTHON_TESTS=/work/cpython_cf   # the folder holding test_concurrent_futures/
    python tests/cpython_contract.py --lane process   # or auto | serial | stdlib
    python tests/cpython_contract.py --lane auto --groups wait,deadlock --isolate

Without ``AMORSIZE_CPYTHON_TESTS`` (or with no ``test_concurrent_futures/`` there) it says so
and exits 0. The CPython files are not part of this repository; fetch them as the project's
notes say (tests from CPython 3.12/3.13 that import on 3.11).

What it does:

* ``--lane auto|process|serial`` sets ``executor_type`` of the chosen start method's
  process-pool classes to ``AutoExecutor(lane=...)`` (``--isolate`` adds ``isolate=True``);
  the tests still pass ``max_workers``, ``mp_context``, ``initializer``... as they do to the
  stdlib's pool. ``--lane stdlib`` runs the real ``ProcessPoolExecutor``: the reference.
* Start method: the ``ProcessPoolFork*`` classes (fork is Linux's default on 3.11) unless
  ``--start-method spawn`` picks the ``ProcessPoolSpawn*`` ones. Forkserver is not run.
* Each group (a CPython test module) runs in a child interpreter under ``unittest``, module
  fixtures included (``setUpModule`` registers ``multiprocessing.util._cleanup_tests``), with
  a ``faulthandler`` watchdog re-armed per test and kept armed through interpreter exit, and
  an outer timeout that kills the child's process group. Output goes to files, not pipes.
* Python < 3.13's ``test.support`` lacks names these files import; a ``sitecustomize`` put on
  the children's ``PYTHONPATH`` adds them in every interpreter (spawned workers re-import the
  test modules to unpickle their functions).
* Tests that cannot see the executor type (they build the stdlib class by name), thread-pool
  classes and tests that read ``ProcessPoolExecutor`` internals are "not counted" and not run
  (``NOT_COUNTED_*`` below says why, per test).

Exit status: 1 if a counted test failed or errored, or anything hung (a test, or the
interpreter at exit), unless ``KNOWN_DIFFERENCES`` lists it for the lane; else 0.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import faulthandler
import functools
import importlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import amorsize_exec

#: lane -> {test id: why AutoExecutor differs there}. Listed failures, errors and hangs do not
#: fail the run (they are still printed). A test id is ``module.Class.method`` as printed; a
#: hang at interpreter exit is ``<module>:exit`` (e.g. ``test_wait:exit``).
_DEADLOCK = "test_deadlock.ProcessPoolForkExecutorDeadlockTest."
_KILLED = (
    "a worker that dies is Dask's to handle: the task is rerun on other workers and fails"
    " with distributed.KilledWorker after 4 deaths (allowed-failures), not BrokenProcessPool"
)
_NO_ANSWER = (
    "no answer within 120 s (use a timeout): the worker dies while a finished task's result is"
    " sent; Dask's client logs 'Couldn't gather 1 keys, rescheduling', the task is recomputed"
    " and the worker dies again at each fetch"
)
KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {
    "cluster": {
        _DEADLOCK + "test_crash_at_task_unpickle": (
            "Dask's scheduler unpickles the task graph: the crash kills the scheduler, here the"
            " LocalCluster's, which runs in the test's interpreter"
        ),
        _DEADLOCK + "test_exit_at_task_unpickle": (
            "SystemExit while Dask's scheduler unpickles the task graph: the task never ends"
            " (use a timeout)"
        ),
        _DEADLOCK + "test_error_at_task_unpickle": (
            "Dask's scheduler raises RuntimeError('Error during deserialization of the task"
            " graph'), not BrokenProcessPool"
        ),
        _DEADLOCK + "test_crash_big_data": _KILLED,
        _DEADLOCK + "test_crash_during_func_exec_on_worker": _KILLED,
        _DEADLOCK + "test_exit_during_func_exec_on_worker": _KILLED,
        _DEADLOCK + "test_crash_during_result_pickle_on_worker": _NO_ANSWER,
        _DEADLOCK + "test_exit_during_result_pickle_on_worker": _NO_ANSWER,
        _DEADLOCK + "test_error_during_result_unpickle_in_result_handler": (
            "the client cannot unpickle the result: its Future raises the UnpicklingError (the"
            " stdlib's pool breaks, BrokenProcessPool)"
        ),
        _DEADLOCK + "test_exit_during_result_unpickle_in_result_handler": (
            "SystemExit while the client unpickles a result, on Dask's IO loop: the Future raises"
            " UnboundLocalError from distributed.utils.sync, and the client is left without its"
            " loop (the tests after it in that interpreter hang)"
        ),
        _DEADLOCK + "test_shutdown_deadlock": (
            _KILLED + "; it hangs when run after test_exit_during_result_unpickle_in_result_handler"
            " (that client is dead), alone it gets KilledWorker in 0.9 s"
        ),
        "test_init.ProcessPoolForkInitializerTest.test_initializer": (
            "an initializer is refused with client= (ValueError): Dask's workers would not run it"
        ),
    },
    "auto": {
        "test_deadlock.ProcessPoolForkExecutorDeadlockTest.test_crash_big_data": (
            "map's sample runs the first items in-process (README, 'What runs in this process'):"
            " a function that segfaults kills the caller, as a plain loop would; isolate=True"
            " passes it"
        ),
    },
}

ENV_VAR = "AMORSIZE_CPYTHON_TESTS"
PACKAGE = "test_concurrent_futures"
#: Group name -> CPython test module (``executor.py`` holds the generic tests that
#: ``test_process_pool`` runs on process pools).
GROUPS: dict[str, str] = {
    "executor": "test_process_pool",
    "wait": "test_wait",
    "as_completed": "test_as_completed",
    "shutdown": "test_shutdown",
    "deadlock": "test_deadlock",
    "init": "test_init",
}
LANES = ("auto", "process", "serial", "stdlib", "cluster")
#: Class-name prefix of each start method's mixin (forkserver before fork: a longer prefix).
MIXIN_PREFIXES = {
    "forkserver": "ProcessPoolForkserver",
    "fork": "ProcessPoolFork",
    "spawn": "ProcessPoolSpawn",
}

_INTERNALS = "reads ProcessPoolExecutor internals"
_BY_NAME = "builds concurrent.futures.ProcessPoolExecutor by name, never the executor type"
_MAX_TASKS = "max_tasks_per_child internals"
#: ``module.method`` -> why that test of the chosen process-pool class does not count.
NOT_COUNTED_METHODS: dict[str, str] = {
    "test_process_pool.test_killed_child": f"{_INTERNALS}: kills a worker from _processes",
    "test_process_pool.test_traceback": (
        f"{_INTERNALS}: asserts the cause is concurrent.futures.process._RemoteTraceback"
    ),
    "test_process_pool.test_saturation": f"{_INTERNALS}: counts _processes against _max_workers",
    "test_process_pool.test_idle_process_reuse_one": f"{_INTERNALS}: counts _processes",
    "test_process_pool.test_idle_process_reuse_multiple": f"{_INTERNALS}: counts _processes",
    "test_process_pool.test_max_tasks_per_child": (
        f"{_MAX_TASKS}: counts _processes (under fork it only expects a ValueError, which "
        "AutoExecutor raises for max_tasks_per_child > 1 whatever the start method)"
    ),
    "test_process_pool.test_max_tasks_per_child_defaults_to_spawn_context": (
        f"{_MAX_TASKS}: reads _mp_context"
    ),
    "test_process_pool.test_max_tasks_early_shutdown": (
        f"{_MAX_TASKS}: worker recycling is the stdlib pool's (skipped under fork anyway)"
    ),
    "test_shutdown.test_interpreter_shutdown": (
        "runs `from concurrent.futures import <executor_type.__name__>` in a new interpreter"
    ),
    "test_shutdown.test_submit_after_interpreter_shutdown": (
        "runs `from concurrent.futures import <executor_type.__name__>` in a new interpreter"
    ),
    "test_shutdown.test_hang_gh83386": (
        "compares executor_type with ProcessPoolExecutor and builds it by name in a new interpreter"
    ),
    "test_shutdown.test_processes_terminate": f"ProcessPoolShutdownTest: {_INTERNALS} _processes",
    "test_shutdown.test_context_manager_shutdown": f"ProcessPoolShutdownTest: {_BY_NAME}",
    "test_shutdown.test_del_shutdown": f"ProcessPoolShutdownTest: {_BY_NAME}",
    "test_shutdown.test_shutdown_no_wait": f"ProcessPoolShutdownTest: {_BY_NAME}",
    "test_shutdown.test_shutdown_gh_132969_case_1": f"ProcessPoolShutdownTest: {_BY_NAME}",
    "test_shutdown.test_shutdown_gh_132969_case_2": f"ProcessPoolShutdownTest: {_BY_NAME}",
    "test_deadlock.test_shutdown_deadlock_pickle": (
        f"{_INTERNALS}: joins _executor_manager_thread"
    ),
    "test_deadlock.test_gh105829_should_not_deadlock_if_wakeup_pipe_full": (
        "patches concurrent.futures.process._ExecutorManagerThread and _ThreadWakeup"
    ),
}
#: ``module.ClassName`` (for mixin classes, the name after the start method's prefix) -> why
#: none of its tests counts. Thread-pool classes are handled by their prefix.
NOT_COUNTED_CLASSES: dict[str, str] = {
    "test_init.FailingInitializerTest": f"{_INTERNALS}: polls executor._broken",
    "test_init.FailingInitializerResourcesTest": (
        "runs the spawn/forkserver FailingInitializer tests (which poll _broken) and reads "
        "multiprocessing's resource tracker"
    ),
}
_THREAD_POOL = "thread-pool executor: not the process pool's contract"

#: Written to a ``sitecustomize.py`` on the children's PYTHONPATH: it adds the names newer
#: CPython tests import from ``test.support`` when (and only if) that package is imported.
SHIM_SOURCE = '''\
"""Written by tests/cpython_contract.py: names newer CPython tests import from test.support."""
import sys


def _patch(support):
    import unittest

    if not hasattr(support, "Py_GIL_DISABLED"):
        support.Py_GIL_DISABLED = False
    if not hasattr(support, "requires_gil_enabled"):
        support.requires_gil_enabled = lambda msg="needs the GIL enabled": unittest.skipIf(
            False, msg
        )
    if not hasattr(support, "force_not_colorized"):
        support.force_not_colorized = lambda func: func


class _PatchOnImport:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "test.support":
            return None
        sys.meta_path.remove(cls)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if "test.support" in sys.modules:
    _patch(sys.modules["test.support"])
else:
    sys.meta_path.insert(0, _PatchOnImport)
'''


# --- the child: one group under unittest ----------------------------------------------------


def _short_id(test_id: str) -> str:
    """``test_concurrent_futures.test_wait.X.test_y`` -> ``test_wait.X.test_y``."""
    prefix = PACKAGE + "."
    return test_id[len(prefix) :] if test_id.startswith(prefix) else test_id


def _last_line(text: str) -> str:
    """The exception line of a traceback (the first line after its last frame), else the
    last line: ``assertEqual`` diffs end with lines that say little."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if frames:
        after = [line for line in lines[frames[-1] + 1 :] if not line.startswith(" ")]
        if after:
            return after[0].strip()
    return lines[-1].strip() if lines else "(no message)"


class _Events:
    """JSON lines, flushed as written: what a killed child leaves is still readable."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8", buffering=1)

    def write(self, **event: Any) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def _make_result_class(events: _Events, arm: Callable[[float], None], per_test_s: float) -> type:
    class Recorder(unittest.TextTestResult):
        """Writes each test's start and outcome; re-arms the watchdog around each test."""

        def startTest(self, test: unittest.TestCase) -> None:
            arm(per_test_s)
            events.write(event="start", id=_short_id(test.id()), t=time.monotonic())
            super().startTest(test)

        def stopTest(self, test: unittest.TestCase) -> None:
            super().stopTest(test)
            events.write(event="stop", id=_short_id(test.id()), t=time.monotonic())
            arm(per_test_s)  # what follows (class and module fixtures) gets its own budget

        def _record(self, test: Any, outcome: str, detail: str) -> None:
            events.write(event="outcome", id=_short_id(test.id()), outcome=outcome, detail=detail)

        def addSuccess(self, test: unittest.TestCase) -> None:
            super().addSuccess(test)
            self._record(test, "passed", "")

        def addFailure(self, test: Any, err: Any) -> None:
            super().addFailure(test, err)
            self._record(test, "failed", self._exc_info_to_string(err, test))

        def addError(self, test: Any, err: Any) -> None:
            super().addError(test, err)
            self._record(test, "error", self._exc_info_to_string(err, test))

        def addSkip(self, test: unittest.TestCase, reason: str) -> None:
            super().addSkip(test, reason)
            self._record(test, "skipped", reason)

        def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
            super().addExpectedFailure(test, err)
            self._record(test, "passed", "expected failure")

        def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
            super().addUnexpectedSuccess(test)
            self._record(test, "failed", "unexpected success")

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
            super().addSubTest(test, subtest, err)
            if err is not None:
                failed = issubclass(err[0], test.failureException)
                text = f"{subtest.id()}\n{self._exc_info_to_string(err, test)}"
                self._record(test, "failed" if failed else "error", text)

    return Recorder


def _create_event(self: Any) -> Any:
    """What newer CPython's ``create_event`` gives process pools: a ``Manager`` ``Event``
    (one manager per class, stopped with the class)."""
    cls = type(self)
    manager = cls.__dict__.get("_contract_manager")
    if manager is None:
        manager = multiprocessing.get_context(self.ctx).Manager()
        cls._contract_manager = manager

        def stop() -> None:
            manager.shutdown()
            cls._contract_manager = None

        cls.addClassCleanup(stop)
    return manager.Event()


def _classify(
    module: Any, group_module: str, start_method: str
) -> tuple[list[type], dict[str, str], int]:
    """Classes to run; not-counted test ids with reasons; tests of other start methods."""
    loader = unittest.TestLoader()
    selected: list[type] = []
    not_counted: dict[str, str] = {}
    other = 0
    for name, cls in sorted(vars(module).items()):
        if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
            continue
        if cls.__module__ != module.__name__:
            continue
        methods = loader.getTestCaseNames(cls)
        prefix = next((p for p in MIXIN_PREFIXES.values() if name.startswith(p)), None)
        if prefix is not None and prefix != MIXIN_PREFIXES[start_method]:
            other += len(methods)
            continue
        bare = name[len(prefix) :] if prefix else name
        why = NOT_COUNTED_CLASSES.get(f"{group_module}.{bare}")
        if why is None and name.startswith("ThreadPool"):
            why = _THREAD_POOL
        if why is None and prefix is None:
            why = "not a process-pool test class"
        if why is not None:
            for method in methods:
                not_counted[f"{group_module}.{name}.{method}"] = why
            continue
        selected.append(cls)
        for method in methods:
            reason = NOT_COUNTED_METHODS.get(f"{group_module}.{method}")
            if reason is not None:
                not_counted[f"{group_module}.{name}.{method}"] = reason
    return selected, not_counted, other


def _start_cluster() -> Any:
    """A 2 x 1-thread Dask ``LocalCluster`` and a client to it (``--lane cluster``)."""
    import logging  # noqa: PLC0415

    import distributed  # noqa: PLC0415  (the dask extra: only this lane needs it)

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    )
    return distributed.Client(cluster, set_as_default=False)


def _run_child(args: argparse.Namespace) -> int:
    out = Path(args.out)
    group_module = GROUPS[args.child]
    stem = args.stem or args.child
    events = _Events(out / f"{stem}.events.jsonl")
    watchdog = (out / f"{stem}.watchdog.txt").open("w", encoding="utf-8")
    skip = set(json.loads(Path(args.skip).read_text())) if args.skip else set()

    def arm(seconds: float) -> None:
        faulthandler.dump_traceback_later(seconds, exit=True, file=watchdog)

    arm(args.per_test_timeout)  # imports and setUpModule too
    support = importlib.import_module("test.support")
    if not hasattr(support, "Py_GIL_DISABLED"):  # the sitecustomize was shadowed: patch here
        exec(compile(SHIM_SOURCE, "<shim>", "exec"), {"__name__": "_contract_shim"})
    sys.path.insert(0, str(Path(args.cpython).resolve()))
    module = importlib.import_module(f"{PACKAGE}.{group_module}")

    executor_type: Any = None
    closers: list[Callable[[], object]] = []
    if args.lane != "stdlib":
        extra: dict[str, Any] = {"isolate": True} if args.isolate else {}
        if args.lane == "cluster":  # a Dask LocalCluster for the group's tests, on loopback
            extra["client"] = _start_cluster()
            closers.append(extra["client"].cluster.close)
            closers.append(extra["client"].close)
        executor_type = functools.partial(amorsize_exec.AutoExecutor, lane=args.lane, **extra)
        events.write(event="info", amorsize_exec=amorsize_exec.__file__)
    else:
        events.write(event="info", stdlib=concurrent.futures.__file__)

    selected, not_counted, other = _classify(module, group_module, args.start_method)
    for test_id, reason in not_counted.items():
        events.write(event="not_counted", id=test_id, reason=reason)
    events.write(event="other_start_methods", count=other)

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in selected:
        if executor_type is not None:
            cls.executor_type = executor_type
        cls.create_event = _create_event
        for method in loader.getTestCaseNames(cls):
            if f"{group_module}.{cls.__name__}.{method}" not in not_counted:
                test = cls(method)
                if _short_id(test.id()) in skip:  # ran in an earlier interpreter of the group
                    continue
                events.write(event="planned", id=_short_id(test.id()))
                suite.addTest(test)

    runner = unittest.TextTestRunner(
        stream=sys.stderr,
        verbosity=2,
        resultclass=_make_result_class(events, arm, args.per_test_timeout),
    )
    if closers:  # before the module's own cleanups, which stop multiprocessing's resource
        # tracker and wait for it (forever, while the cluster's workers hold semaphores)
        set_up = getattr(module, "setUpModule", None)

        def set_up_then_close_last() -> None:
            if set_up is not None:
                set_up()
            for close in closers:
                unittest.addModuleCleanup(close)

        module.setUpModule = set_up_then_close_last  # type: ignore[attr-defined]
    runner.run(suite)  # module fixtures and cleanups included
    # Armed until the process ends: a hang in interpreter exit (threading's atexit hooks,
    # non-daemon threads) dumps every thread's stack to the watchdog file and exits.
    arm(args.exit_timeout)
    events.write(event="done", t=time.monotonic())
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


# --- the parent: run each group, read what it left, report -----------------------------------


@dataclasses.dataclass
class GroupReport:
    name: str
    module: str
    passed: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    not_counted: dict[str, str] = dataclasses.field(default_factory=dict)
    hung: dict[str, str] = dataclasses.field(default_factory=dict)
    not_run: list[str] = dataclasses.field(default_factory=list)
    other_start_methods: int = 0
    seconds: float = 0.0
    implementation: str = ""
    warnings: int = 0


_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a killed child
            break
    return events


def _run_group(name: str, args: argparse.Namespace, out: Path, env: dict[str, str]) -> GroupReport:
    """Run the group; if its interpreter crashes or hangs in a test, run the tests it did not
    reach in a new one (at most ``--resumes`` times)."""
    report = GroupReport(name, GROUPS[name])
    started = time.monotonic()
    done: list[str] = []
    for attempt in range(args.resumes + 1):
        stem = name if attempt == 0 else f"{name}.{attempt}"
        skip = None
        if done:
            skip = out / f"{stem}.skip.json"
            skip.write_text(json.dumps(done), encoding="utf-8")
        returncode, timed_out = _run_child_of(
            name, stem=stem, skip=skip, args=args, out=out, env=env
        )
        ran = _fill_report(
            report, stem=stem, out=out, returncode=returncode, timed_out=timed_out, args=args
        )
        done += ran
        if not report.not_run or not ran:
            break
    report.seconds = time.monotonic() - started
    return report


def _run_child_of(
    name: str,
    *,
    stem: str,
    skip: Path | None,
    args: argparse.Namespace,
    out: Path,
    env: dict[str, str],
) -> tuple[int, bool]:
    """One interpreter for (part of) a group: its exit status, and whether it was killed."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--lane",
        args.lane,
        "--start-method",
        args.start_method,
        "--out",
        str(out),
        "--cpython",
        str(args.cpython),
        "--per-test-timeout",
        str(args.per_test_timeout),
        "--exit-timeout",
        str(args.exit_timeout),
    ]
    command += ["--stem", stem]
    if skip is not None:
        command += ["--skip", str(skip)]
    if args.isolate:
        command.append("--isolate")
    timed_out = False
    with (
        (out / f"{stem}.stdout.txt").open("wb") as stdout,
        (out / f"{stem}.stderr.txt").open("wb") as stderr,
    ):
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            start_new_session=True,  # its own process group: killed with all it started
        )
        try:
            returncode = child.wait(timeout=args.group_timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(child.pid)
            returncode = child.wait()
        _kill_group(child.pid)  # workers a watchdog exit left behind
    return returncode, timed_out


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _fill_report(
    report: GroupReport,
    *,
    stem: str,
    out: Path,
    returncode: int,
    timed_out: bool,
    args: argparse.Namespace,
) -> list[str]:
    """Add what one interpreter of the group left to ``report``; the tests it started."""
    name = stem
    events = _read_events(out / f"{stem}.events.jsonl")
    outcomes: dict[str, tuple[str, str]] = {}
    planned: list[str] = []
    started: list[str] = []
    stopped: set[str] = set()
    done = False
    for event in events:
        kind = event["event"]
        if kind == "info":
            report.implementation = event.get("amorsize_exec") or event.get("stdlib", "")
        elif kind == "not_counted":
            report.not_counted[event["id"]] = event["reason"]
        elif kind == "other_start_methods":
            report.other_start_methods = event["count"]
        elif kind == "planned":
            planned.append(event["id"])
        elif kind == "start":
            started.append(event["id"])
        elif kind == "stop":
            stopped.add(event["id"])
        elif kind == "outcome":
            previous = outcomes.get(event["id"])
            if previous is None or _RANK[event["outcome"]] > _RANK[previous[0]]:
                outcomes[event["id"]] = (event["outcome"], event["detail"])
        elif kind == "done":
            done = True
    for test_id, (outcome, detail) in outcomes.items():
        if outcome == "passed":
            report.passed.append(test_id)
        elif outcome == "skipped":
            report.skipped[test_id] = detail
        elif outcome == "failed":
            report.failed[test_id] = detail
        else:
            report.errors[test_id] = detail
    watchdog = out / f"{name}.watchdog.txt"
    fired = watchdog.exists() and "Timeout (" in watchdog.read_text(errors="replace")
    stderr_text = (out / f"{name}.stderr.txt").read_text(errors="replace")
    report.warnings += stderr_text.count("Warning -- ")
    report.not_run = []
    if done:
        if fired or timed_out:
            limit = args.exit_timeout if fired else args.group_timeout
            report.hung[f"{report.module}:exit"] = (
                f"interpreter did not exit within {limit:g} s after the tests; "
                f"stacks in {watchdog if fired else 'n/a (outer timeout)'}"
            )
        elif returncode != 0:
            report.errors[f"{report.module}:exit"] = f"interpreter exited with status {returncode}"
        return started
    open_tests = [t for t in started if t not in stopped]
    where = open_tests[-1] if open_tests else f"{report.module}:fixtures"
    if fired or timed_out:
        limit = args.per_test_timeout if fired else args.group_timeout
        report.hung[where] = (
            f"no progress for {limit:g} s; stacks in {watchdog if fired else 'n/a'}"
        )
    else:
        how = f"killed by signal {-returncode}" if returncode < 0 else f"status {returncode}"
        report.errors[where] = (
            f"the group's interpreter ended ({how}) during this test; see {name}.stderr.txt"
        )
    report.not_run = [t for t in planned if t not in started]
    return started


def _counted_problems(report: GroupReport, lane: str) -> tuple[list[str], list[str]]:
    """Lines for failures that count, and for known differences."""
    known = KNOWN_DIFFERENCES.get(lane, {})
    counted: list[str] = []
    excused: list[str] = []
    for label, table in (("FAIL", report.failed), ("ERROR", report.errors), ("HUNG", report.hung)):
        for test_id, detail in table.items():
            line = f"  {label:5} {test_id}: {_last_line(detail)}"
            if test_id in known:
                excused.append(f"{line}\n        known difference: {known[test_id]}")
            else:
                counted.append(line)
    return counted, excused


def _print_reports(reports: list[GroupReport], args: argparse.Namespace) -> int:
    header = (
        f"{'group':<13}{'passed':>7}{'failed':>7}{'errors':>7}{'skipped':>8}"
        f"{'not counted':>12}{'hung':>5}{'seconds':>9}"
    )
    print(header)
    totals = [0] * 6
    seconds = 0.0
    for r in reports:
        row = [
            len(r.passed),
            len(r.failed),
            len(r.errors),
            len(r.skipped),
            len(r.not_counted),
            len(r.hung),
        ]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        seconds += r.seconds
        print(
            f"{r.name:<13}{row[0]:>7}{row[1]:>7}{row[2]:>7}{row[3]:>8}{row[4]:>12}{row[5]:>5}"
            f"{r.seconds:>9.1f}"
        )
    t = totals
    print(f"{'total':<13}{t[0]:>7}{t[1]:>7}{t[2]:>7}{t[3]:>8}{t[4]:>12}{t[5]:>5}{seconds:>9.1f}")
    counted: list[str] = []
    excused: list[str] = []
    for r in reports:
        c, e = _counted_problems(r, args.lane)
        counted += c
        excused += e
    if counted:
        print("\nFailures:")
        print("\n".join(counted))
    if excused:
        print("\nKnown differences (not failing the run):")
        print("\n".join(excused))
    skipped = [(i, why) for r in reports for i, why in r.skipped.items()]
    if skipped:
        print("\nSkipped:")
        for test_id, why in skipped:
            print(f"  {test_id}: {why}")
    not_run = [t for r in reports for t in r.not_run]
    if not_run:
        print(f"\nNot run ({len(not_run)}; their group's interpreter stopped first, --resumes):")
        for test_id in not_run:
            print(f"  {test_id}")
    if args.list_not_counted:
        print("\nNot counted (not run):")
        for r in reports:
            for test_id, why in r.not_counted.items():
                print(f"  {test_id}: {why}")
    else:
        by_reason: dict[str, int] = {}
        for r in reports:
            for why in r.not_counted.values():
                by_reason[why] = by_reason.get(why, 0) + 1
        print("\nNot counted (not run; --list-not-counted names them):")
        for why, n in sorted(by_reason.items(), key=lambda item: -item[1]):
            print(f"  {n:3} {why}")
    warnings = sum(r.warnings for r in reports)
    if warnings:
        print(
            f"\ntest.support warnings (threads or processes left after a test; informative): "
            f"{warnings}, see the *.stderr.txt files"
        )
    print(f"\nLogs: {args.out}")
    return 1 if counted else 0


def _child_env(args: argparse.Namespace, shim_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(shim_dir), str(args.cpython)])
    env.pop("PYTHONSTARTUP", None)
    return env


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lane", choices=LANES, default="process")
    parser.add_argument("--isolate", action="store_true", help="pass isolate=True")
    parser.add_argument(
        "--start-method",
        choices=("fork", "spawn"),
        default="fork",
        help="which mixin's process-pool classes run (default fork, Linux's on 3.11)",
    )
    parser.add_argument(
        "--groups",
        default=",".join(GROUPS),
        help=f"comma-separated, from {', '.join(GROUPS)} (default all)",
    )
    parser.add_argument("--out", help="folder for logs (default: a new temporary one)")
    parser.add_argument("--per-test-timeout", type=float, default=120.0)
    parser.add_argument("--exit-timeout", type=float, default=60.0)
    parser.add_argument("--group-timeout", type=float, default=1200.0)
    parser.add_argument("--list-not-counted", action="store_true")
    parser.add_argument("--child", choices=tuple(GROUPS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--resumes",
        type=int,
        default=3,
        help="times a group whose interpreter crashed or hung goes on in a new one (default 3)",
    )
    parser.add_argument("--cpython", help=argparse.SUPPRESS)
    parser.add_argument("--stem", help=argparse.SUPPRESS)
    parser.add_argument("--skip", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        return _run_child(args)
    root = os.environ.get(ENV_VAR)
    if not root or not (Path(root) / PACKAGE / "__init__.py").is_file():
        print(
            f"cpython_contract: skipped: set {ENV_VAR} to the folder that contains "
            f"{PACKAGE}/ (CPython's Lib/test/{PACKAGE}); "
            f"{'it is not set' if not root else f'{root} has no {PACKAGE}/__init__.py'}."
        )
        return 0
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        print(f"cpython_contract: unknown group(s) {unknown}; known: {list(GROUPS)}")
        return 2
    args.cpython = Path(root).resolve()
    args.out = Path(args.out or tempfile.mkdtemp(prefix=f"cpython_contract_{args.lane}_"))
    args.out.mkdir(parents=True, exist_ok=True)
    shim_dir = args.out / "shim"
    shim_dir.mkdir(exist_ok=True)
    (shim_dir / "sitecustomize.py").write_text(SHIM_SOURCE, encoding="utf-8")
    env = _child_env(args, shim_dir)
    isolate = " isolate=True" if args.isolate else ""
    print(f"cpython_contract: lane={args.lane}{isolate} start method={args.start_method}")
    reports = []
    for group in groups:
        report = _run_group(group, args, args.out, env)
        reports.append(report)
        if len(reports) == 1:
            print(f"executor implementation: {report.implementation or '(not reported)'}")
        _progress(sys.stdout, report)
    print()
    return _print_reports(reports, args)


def _progress(stream: TextIO, report: GroupReport) -> None:
    bad = len(report.failed) + len(report.errors) + len(report.hung)
    passed = len(report.passed)
    stream.write(f"  {report.name}: {passed} passed, {bad} not, {report.seconds:.1f} s\n")
    stream.flush()


if __name__ == "__main__":
    sys.exit(main())
