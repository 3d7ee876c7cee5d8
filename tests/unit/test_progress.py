"""The bootstrap progress display: errors shown once, as written, whatever they contain."""

from __future__ import annotations

import io

from rich.console import Console

from labctl.cli.progress import StepProgress
from labctl.engine.executor import Outcome, StepResult


def shown(*results: StepResult) -> str:
    out = io.StringIO()
    with StepProgress(Console(file=out, width=120, force_terminal=False)) as progress:
        for result in results:
            progress.update(result)
        progress.announce("servers[0].bmc: [bold]not markup[/]")
    return out.getvalue()


def failed(target: str, error: str) -> StepResult:
    return StepResult("s1", target, "write /etc/x [0600]", Outcome.FAILED, 0.1, error=error)


def test_driver_errors_are_not_prefixed_twice_and_brackets_survive() -> None:
    text = shown(
        failed("wind", "wind: writing /etc/x exited 1: sudo: [/] a password is required"),
        failed("fohn", "servers[0].bmc.password: environment variable X is not set"),
    )
    assert "wind: writing /etc/x exited 1: sudo: [/] a password is required" in text
    assert "wind: wind:" not in text
    assert "fohn: servers[0].bmc.password: environment variable X is not set" in text
    assert "servers[0].bmc: [bold]not markup[/]" in text
    assert "write /etc/x [0600]" in text


def test_a_running_step_shows_without_counting_as_done() -> None:
    waiting = StepResult("w", "wind", "wait for SSH to answer", Outcome.RUNNING, 0.0)
    text = shown(waiting)
    assert "running wait for SSH to answer" in text and "0 done" in text
