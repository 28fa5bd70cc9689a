"""Command line: ``amorsize-exec demo`` (or ``python -m amorsize_exec demo``), and
``amorsize-exec explain MODULE:FUNCTION`` to see what AutoExecutor would do with a function."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from ._demo import run_demo
from ._explain import explain as explain_function
from ._explain import format_report, load_function


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amorsize-exec", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="time a few built-in workloads and show decisions")
    demo.add_argument("--repeats", type=int, default=1, help="runs per timing (median)")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the decision log")
    explain = commands.add_parser(
        "explain", help="what AutoExecutor would do with a function, and why"
    )
    explain.add_argument("target", metavar="MODULE:FUNCTION", help="e.g. mypkg.work:score")
    source = explain.add_mutually_exclusive_group()
    source.add_argument("--items", type=int, default=1000, help="input range(N) (default 1000)")
    source.add_argument(
        "--input", metavar="EXPR", help="a Python expression giving the input (one argument each)"
    )
    explain.add_argument("--json", action="store_true", help="print the report as JSON")
    explain.add_argument("--run", action="store_true", help="also time it: predicted vs measured")
    explain.add_argument("-v", "--verbose", action="store_true", help="show the decision log")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.command == "demo":
        run_demo(sys.stdout, repeats=args.repeats)
        return 0
    try:
        fn = load_function(args.target)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        parser.error(f"explain: cannot load {args.target}: {exc}")
    # The user's own expression, evaluated as `python -c` would: it is their command line.
    items = list(eval(args.input, {}) if args.input else range(args.items))
    report = explain_function(fn, items, run=args.run)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
