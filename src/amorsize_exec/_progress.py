"""``map(..., progress=...)``: a progress bar (tqdm) or a callback, in every lane.

Progress is counted where results are delivered, so it is the same in every lane: results
replayed from the sample, computed here in batches, or coming back from the pool in chunks.
The reporter is called at most every ``_EVERY_S`` (and at the end), so a bar over 1,000,000
trivial items costs a clock read per item, not a redraw; with ``progress=None`` (the default)
nothing of this runs.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

#: ``progress=`` accepts ``True`` (tqdm), a callable ``(done, total)``, or ``None``/``False``.
ProgressCallback: TypeAlias = Callable[[int, "int | None"], object]
Progress: TypeAlias = "bool | ProgressCallback | None"

#: Seconds between two reports (tqdm's own default refresh is 0.1 s).
_EVERY_S = 0.1

_NO_TQDM = (
    "progress=True draws a bar with tqdm, which is not installed: "
    "pip install 'amorsize-exec[progress]', or pass a callable (done, total) instead"
)


def check_progress(progress: Progress) -> None:
    """The argument's type, and tqdm's presence for ``True``: an error at the call."""
    if progress is True:
        try:
            importlib.import_module("tqdm")  # the optional extra: imported only when asked
        except ImportError:
            raise ImportError(_NO_TQDM) from None
    elif not (progress is None or progress is False or callable(progress)):
        raise TypeError(
            f"progress must be True, a callable (done, total) or None, not {progress!r}"
        )


def with_progress(
    results: Iterator[Any],
    progress: Progress,
    total: int | None,
    lane_text: Callable[[], str | None],
) -> Iterator[Any]:
    """``results``, reporting ``(done, total)`` as they are delivered; ``lane_text()`` says
    where the items run once the decision is made (tqdm shows it before the bar)."""
    if progress is None or progress is False:
        return results
    if progress is True:
        return _with_bar(results, total, lane_text)
    return _with_callback(results, progress, total)


def _with_callback(
    results: Iterator[Any], report: ProgressCallback, total: int | None
) -> Iterator[Any]:
    done = 0
    next_report = time.monotonic() + _EVERY_S
    try:
        for result in results:
            yield result
            done += 1
            if time.monotonic() >= next_report:
                report(done, total)
                next_report = time.monotonic() + _EVERY_S
    finally:
        report(done, total)


def _with_bar(
    results: Iterator[Any], total: int | None, lane_text: Callable[[], str | None]
) -> Iterator[Any]:
    tqdm = importlib.import_module("tqdm").tqdm
    with tqdm(total=total, unit="item") as bar:
        shown: str | None = None

        def report(done: int, _: int | None) -> None:
            nonlocal shown
            text = lane_text()
            if text is not None and text != shown:
                bar.set_description(text, refresh=False)
                shown = text
            bar.update(done - bar.n)

        yield from _with_callback(results, report, total)
