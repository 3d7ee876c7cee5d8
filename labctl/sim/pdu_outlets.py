"""The simulated PDU's outlet table, served to net-snmp's snmpd over pass_persist.

snmpd runs ``python -m labctl.sim.pdu_outlets STATE_DIR`` once and talks to it
on stdin/stdout (PING/PONG, get, getnext, set). The outlets, the profile and
the power hooks come from ``STATE_DIR/pdu.json``; states are kept in
``STATE_DIR/outlets.json``. Switching an outlet runs its hooks, so cutting an
outlet really stops what the inventory says is plugged into it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from labctl.drivers.pdu_profiles import PduProfile, profile_for

Oid = tuple[int, ...]


def _oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip().strip(".").split("."))


def _text(oid: Oid) -> str:
    return "." + ".".join(map(str, oid))


class Outlets:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        config = json.loads((state_dir / "pdu.json").read_text())
        self.count: int = config["outlet_count"]
        self.profile: PduProfile = profile_for(config["profile"], config.get("overrides"))
        self.hooks: dict[str, dict[str, list[str]]] = config.get("hooks", {})
        self.reboot_delay: float = config.get("reboot_delay", 2.0)
        path = state_dir / "outlets.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.on = {n: saved.get(str(n), True) for n in range(1, self.count + 1)}
        self.lock = threading.Lock()

    # -- state -------------------------------------------------------------

    def _save(self) -> None:
        path = self.state_dir / "outlets.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({str(n): v for n, v in self.on.items()}))
        os.replace(tmp, path)

    def _hook(self, outlet: int, which: str) -> None:
        argv = self.hooks.get(str(outlet), {}).get(which)
        if argv:
            subprocess.run(argv, capture_output=True, timeout=60, check=False)

    def switch(self, outlet: int, on: bool) -> None:
        with self.lock:
            self.on[outlet] = on
            self._save()
        self._hook(outlet, "on" if on else "off")

    def reboot(self, outlet: int) -> None:
        self.switch(outlet, False)

        def later() -> None:
            time.sleep(self.reboot_delay)
            self.switch(outlet, True)

        threading.Thread(target=later, daemon=True).start()

    # -- the MIB view ----------------------------------------------------------

    def table(self) -> dict[Oid, tuple[str, str]]:
        p = self.profile
        rows: dict[Oid, tuple[str, str]] = {}
        if p.kind == "status-string":
            value = ",".join(str(p.state_on if self.on[n] else p.state_off) for n in self.on)
            rows[_oid(p.state_oid)] = ("string", value)
            return rows
        for n, on in self.on.items():
            rows[_oid(p.oid(p.state_oid, n))] = ("integer", str(p.state_on if on else p.state_off))
            rows[_oid(p.oid(p.control_oid, n))] = (
                "integer",
                str(p.on_value if on else p.off_value),
            )
        return rows

    def set(self, oid: Oid, kind: str, value: str) -> str:
        p = self.profile
        if p.kind == "status-string":
            if oid != _oid(p.control_oid):
                return "not-writable"
            if kind != "string":
                return "wrong-type"
            parts = value.strip('"').split(",")
            if len(parts) != self.count or any(
                v not in (str(p.on_value), str(p.off_value)) for v in parts
            ):
                return "wrong-value"
            for n, part in enumerate(parts, start=1):
                wanted = part == str(p.on_value)
                if wanted != self.on[n]:
                    self.switch(n, wanted)
            return "DONE"
        for n in self.on:
            if oid == _oid(p.oid(p.control_oid, n)):
                if kind != "integer":
                    return "wrong-type"
                number = int(value)
                if number == p.on_value:
                    self.switch(n, True)
                elif number == p.off_value:
                    self.switch(n, False)
                elif p.reboot_value is not None and number == p.reboot_value:
                    self.reboot(n)
                else:
                    return "wrong-value"
                return "DONE"
        return "not-writable"


def serve(outlets: Outlets, stdin: TextIO, stdout: TextIO) -> None:
    def reply(*lines: str) -> None:
        stdout.write("\n".join(lines) + "\n")
        stdout.flush()

    while True:
        command = stdin.readline()
        if not command:
            return
        command = command.strip()
        if command == "PING":
            reply("PONG")
        elif command in ("get", "getnext"):
            oid = _oid(stdin.readline())
            rows = outlets.table()
            if command == "get":
                found = oid if oid in rows else None
            else:
                found = next((o for o in sorted(rows) if o > oid), None)
            if found is None:
                reply("NONE")
            else:
                kind, value = rows[found]
                reply(_text(found), kind, value)
        elif command == "set":
            oid = _oid(stdin.readline())
            kind, _, value = stdin.readline().strip().partition(" ")
            reply(outlets.set(oid, kind, value))
        elif command == "":
            continue
        else:
            reply("NONE")


if __name__ == "__main__":
    serve(Outlets(Path(sys.argv[1])), sys.stdin, sys.stdout)
