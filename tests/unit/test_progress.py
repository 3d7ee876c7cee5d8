"""The bootstrap progress display: errors shown once, as written, whatever they contain;
live on a terminal, whole plain lines anywhere else."""

from __future__ import annotations

import io

from rich.console import Console

from labctl.cli.progress import StepProgress
from labctl.engine.executor import Outcome, StepResult


def shown(*results: StepResult, terminal: bool = True) -> str:
    out = io.StringIO()
    # No colours: the text stays contiguous (cursor moves remain, as on a terminal).
    console = Console(file=out, width=120, force_terminal=terminal, color_system=None)
    with StepProgress(console) as progress:
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
    assert "wait for SSH" not in shown(waiting, terminal=False)  # a log says when it ends


LONG = (
    "write /etc/kubernetes/ssl/kube-proxy-key.pem (227 B, 0600) and then a description that "
    "goes on well past eighty columns, ending here"
)


def test_not_a_terminal_prints_each_finished_step_whole_on_one_line() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)  # a StringIO: not a terminal, as in CI or a pipe
    assert not console.is_terminal
    with StepProgress(console) as progress:
        progress.update(StepResult("s1", "fohn", LONG, Outcome.RUNNING, 0.0))
        progress.update(StepResult("s1", "fohn", LONG, Outcome.CHANGED, 0.2))
        progress.update(failed("wind", "wind: writing /etc/x exited 1: sudo: [/] " + "x" * 90))
        progress.announce("layer pki: " + "y" * 100)
    lines = out.getvalue().splitlines()
    assert lines == [
        f"fohn changed {LONG}",
        "wind failed write /etc/x [0600]: writing /etc/x exited 1: sudo: [/] " + "x" * 90,
        "layer pki: " + "y" * 100,
    ]
    assert "\x1b" not in out.getvalue() and "…" not in out.getvalue()


def test_a_terminal_keeps_the_live_display() -> None:
    text = shown(StepResult("s1", "fohn", LONG, Outcome.CHANGED, 0.2))
    assert "1 done" in text  # the live per-target line, not the plain one
    assert f"fohn changed {LONG}" not in text
