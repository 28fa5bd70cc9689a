"""Command line: ``amorsize-exec demo`` (or ``python -m amorsize_exec demo``)."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from ._demo import run_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amorsize-exec", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="time a few built-in workloads and show decisions")
    demo.add_argument("--repeats", type=int, default=1, help="runs per timing (median)")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the decision log")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    run_demo(sys.stdout, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
