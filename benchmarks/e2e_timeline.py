"""Where an end-to-end test's time goes: every labctl it runs, on a timeline.

A pytest plugin for measuring, not for the suite: ``python -m pytest -p
benchmarks.e2e_timeline -s tests/e2e/test_X.py`` prints, per test, each labctl process
(its arguments, when it started from the test's start, and its seconds) and the test's
set-up, call and teardown; the gaps between labctl lines are the test's own waits,
polls, SSH reads and drills. docs/performance.md's suite section was measured with it.
It wraps tests.labctl_process.run_labctl before the test modules import it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import tests.labctl_process as process

_real = process.run_labctl
_START = [time.monotonic()]


def _timed(*args: str, **kwargs: Any) -> Any:
    started = time.monotonic()
    try:
        return _real(*args, **kwargs)
    finally:
        now = time.monotonic()
        shown = " ".join(a for a in args if a not in ("-o", "json"))
        print(f"\n[timeline] +{started - _START[0]:7.1f} s  {now - started:6.1f} s  labctl {shown}")


process.run_labctl = _timed


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _START[0] = time.monotonic()
    print(f"\n[timeline] {item.nodeid}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    print(f"\n[timeline] {report.when}: {report.duration:.1f} s ({report.nodeid})")
