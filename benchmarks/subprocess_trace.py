"""Where a test file's time goes: every command it runs and every sleep, on a timeline.

A pytest plugin for measuring, not for the suite: ``python -m pytest -p
benchmarks.subprocess_trace -s tests/faults/test_faults.py`` appends to
``$TRACE_LOG`` (``subprocess-trace.log`` here otherwise) one line per
``subprocess.run`` over 0.2 s (labctl, ssh, ip, ipmitool: its start from the run's
start, its seconds, its command) and per ``time.sleep`` of a second or more, and the
set-up, call and teardown of each test with the seconds slept so far. labctl's own
processes are what tests.labctl_process counts; this adds the tests' SSH reads, the
tools they run and their sleeps, which is where a fault test's rounds went
(docs/performance.md, "The five slowest files, measured").
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

_START = time.monotonic()
_LOG = open(os.environ.get("TRACE_LOG", "subprocess-trace.log"), "a", buffering=1)  # noqa: SIM115
_run, _sleep = subprocess.run, time.sleep
_SLEPT = [0.0]


def _line(text: str) -> None:
    _LOG.write(f"{time.monotonic() - _START:8.1f} {text}\n")


def _shown(args: Any) -> str:
    argv = [str(a) for a in (args if isinstance(args, list | tuple) else [args])]
    if "-m" in argv and "labctl" in argv:
        argv = argv[argv.index("labctl") :]
    return " ".join(argv)[:160].replace("\n", " ")


def _timed_run(args: Any, *more: Any, **kwargs: Any) -> Any:
    started = time.monotonic()
    try:
        return _run(args, *more, **kwargs)
    finally:
        if (took := time.monotonic() - started) > 0.2:
            _LOG.write(f"{started - _START:8.1f} {took:7.2f}s run {_shown(args)}\n")


def _counted_sleep(seconds: float) -> None:
    _SLEPT[0] += float(seconds)
    if seconds >= 1:
        _line(f"sleep {seconds:.2f}")
    _sleep(seconds)


subprocess.run = _timed_run
time.sleep = _counted_sleep  # type: ignore[assignment]


def pytest_runtest_setup(item: pytest.Item) -> None:
    _line(f"=== setup {item.nodeid}")


def pytest_runtest_call(item: pytest.Item) -> None:
    _line(f"=== call {item.nodeid} (slept so far {_SLEPT[0]:.1f} s)")


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _line(f"=== teardown {item.nodeid} (slept so far {_SLEPT[0]:.1f} s)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    _line(f"=== end (slept {_SLEPT[0]:.1f} s)")
