"""`labctl completion SHELL`: the printed script, sourced in a real bash, completes labctl.

The script calls labctl back with _LABCTL_COMPLETE set; the test runs that round
trip through bash's own completion machinery (COMP_WORDS, COMPREPLY), and asks the
zsh and fish protocols directly (neither shell is installed here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labctl_process import run_labctl

# The console script of the environment running the tests (an editable install).
BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def _bash_complete(line: str) -> list[str]:
    script = run_labctl("completion", "bash")
    assert script.returncode == 0, script.stderr
    driver = (
        'eval "$LABCTL_SCRIPT"\n'
        'read -ra COMP_WORDS <<< "$LINE"\n'
        '[ "${LINE: -1}" = " " ] && COMP_WORDS+=("")\n'
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        "_labctl_completion labctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", driver],
        env=_env(LABCTL_SCRIPT=script.stdout, LINE=line),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_labctl_console_script_is_there() -> None:
    assert (BIN / "labctl").exists(), f"no labctl in {BIN}: pip install -e . first"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("labctl val", ["validate"]),
        ("labctl power st", ["status"]),
        ("labctl validate --fo", ["--format"]),
        ("labctl validate --format s", ["sarif"]),
        ("labctl completion ", ["bash", "zsh", "fish"]),
    ],
)
def test_bash_completes_commands_options_and_values(line: str, expected: list[str]) -> None:
    assert _bash_complete(line) == expected


def test_zsh_and_fish_scripts_and_protocols() -> None:
    zsh = run_labctl("completion", "zsh")
    assert zsh.stdout.startswith("#compdef labctl")
    fish = run_labctl("completion", "fish")
    assert "complete --command labctl" in fish.stdout
    for shell, extra in (
        ("zsh", {}),
        ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"}),
    ):
        done = subprocess.run(
            [str(BIN / "labctl")],
            env=_env(
                _LABCTL_COMPLETE=f"complete_{shell}", _TYPER_COMPLETE_ARGS="labctl val", **extra
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "validate" in done.stdout, (shell, done.stdout)


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = run_labctl("completion", "tcsh")
    assert done.returncode == 2
    assert "bash" in done.stderr and "zsh" in done.stderr
