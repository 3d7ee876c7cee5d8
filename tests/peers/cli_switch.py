"""A switch's CLI envelope behind a real sshd, for graceful power's EOS and IOS transport.

No EOS or IOS can run here. This is the program a real OpenSSH sshd (tests/peers/sshd.py)
runs for the test's key (``command=`` in authorized_keys): it records every exchange and
answers as the switch's CLI frames it, nothing more:

* an exec request (``SSH_ORIGINAL_COMMAND``) is one show command: answered from the
  vendor-shaped fixtures the test names in ``answers.json`` (``[plain, drained]``: the
  second once the running configuration holds labctl's drain, as the switch's routes would
  change), ``show running-config`` from ``running.txt``; anything else gets the CLI's
  ``% Invalid input``;
* a shell request is configuration lines on stdin. ``eos``: ``configure session NAME``
  stages the lines (``end`` leaves them pending), a later ``configure session NAME`` +
  ``commit`` applies them to ``running.txt``, ``abort`` drops them. ``ios``: ``configure
  terminal`` applies each line as it comes. A line listed in ``refuse.json`` is answered
  ``% Invalid input detected at '^' marker.`` and not applied.

Applying is bookkeeping, not a switch: a line is kept in ``running.txt``, ``no LINE``
removes the lines that start with LINE. ``python -m tests.peers.cli_switch STATE_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

INVALID = "% Invalid input detected at '^' marker."
MODES = ("exit", "end", "configure terminal")


def _log(state: Path, entry: dict[str, object]) -> None:
    with (state / "log.jsonl").open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _running(state: Path) -> list[str]:
    path = state / "running.txt"
    return path.read_text().splitlines() if path.exists() else []


def _apply(state: Path, lines: list[str]) -> None:
    running = _running(state)
    for raw in lines:
        line = raw.strip()
        if not line or line in MODES or line.startswith(("clear ", "configure session")):
            continue
        if line.startswith("no "):
            gone = line[3:]
            running = [r for r in running if not r.strip().startswith(gone)]
        elif line not in [r.strip() for r in running]:
            running.append(line)
    (state / "running.txt").write_text("".join(f"{r}\n" for r in running))


def _exec(state: Path, command: str) -> None:
    _log(state, {"exec": command})
    if command == "show running-config":
        sys.stdout.write("\n".join(_running(state)) + "\n")
        return
    answers = json.loads((state / "answers.json").read_text())
    if command not in answers:
        print(INVALID)
        return
    drained = any("route-map LABCTL-DRAIN in" in r for r in _running(state))
    sys.stdout.write(Path(answers[command][1 if drained else 0]).read_text())


def _shell(state: Path, platform: str, lines: list[str]) -> None:
    _log(state, {"shell": lines})
    refuse = set(json.loads((state / "refuse.json").read_text()))
    sessions = state / "sessions"
    sessions.mkdir(exist_ok=True)
    session: Path | None = None
    applied: list[str] = []
    for line in lines:
        if line.strip() in refuse:
            print(INVALID)
            continue
        if platform == "eos" and line.startswith("configure session "):
            session = sessions / line.split()[2]
            continue
        if session is not None and line == "commit":
            _apply(state, session.read_text().splitlines() if session.exists() else [])
            session.unlink(missing_ok=True)
            session = None
        elif session is not None and line == "abort":
            session.unlink(missing_ok=True)
            session = None
        elif session is not None and line == "end":
            session = None  # pending, not applied
        elif session is not None:
            with session.open("a") as handle:
                handle.write(line + "\n")
        elif platform == "ios":
            applied.append(line)
    if applied:
        _apply(state, applied)


def main(state: Path) -> None:
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    if command:
        _exec(state, command)
    else:
        platform = (state / "platform").read_text().strip()
        _shell(state, platform, sys.stdin.read().splitlines())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
