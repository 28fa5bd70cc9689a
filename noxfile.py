"""Sessions: ``nox -s tests`` (every Python 3.10-3.13 present), ``lint``, ``typecheck``,
``demo``, ``bench``. Interpreters that are missing are skipped, also on CI."""

from __future__ import annotations

import glob
import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# pyenv installs every version but puts only one on PATH: show nox the others too.
_pyenv_bins = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-3].*/bin")))
if _pyenv_bins:
    os.environ["PATH"] = os.pathsep.join([*_pyenv_bins, os.environ.get("PATH", "")])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("amorsize-exec", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
