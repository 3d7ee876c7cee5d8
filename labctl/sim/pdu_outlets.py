"""A simulated PDU's MIB view, served to net-snmp's snmpd over pass_persist.

snmpd runs ``python -m labctl.sim.pdu_outlets STATE_DIR`` once and talks to it
on stdin/stdout (PING/PONG, get, getnext, set). What the unit answers comes from
its device record (``pdu_record.py``: written from the vendor's MIB, never from
labctl's profiles); the outlets, the record's path and the power hooks come from
``STATE_DIR/pdu.json``; states are kept in ``STATE_DIR/outlets.json``. The
record's semantics are applied as the MIB states them: a control column's
values switch, reboot or read back the outlet; a status string is parsed and
written whole. Switching an outlet runs its hooks, so cutting an outlet really
stops what the inventory says is plugged into it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from labctl.sim.pdu_record import DeviceRecord, MibObject, load

Oid = tuple[int, ...]

# pass_persist's answers to a set it refuses (snmpd maps them to SNMP errors).
NOT_WRITABLE, WRONG_TYPE, WRONG_VALUE, INCONSISTENT = (
    "not-writable",
    "wrong-type",
    "wrong-value",
    "inconsistent-value",
)


def _oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip().strip(".").split("."))


def _text(oid: Oid) -> str:
    return "." + ".".join(map(str, oid))


class Outlets:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        config = json.loads((state_dir / "pdu.json").read_text())
        self.count: int = config["outlet_count"]
        self.record: DeviceRecord = load(Path(config["record"]))
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
        # Read again at each switch: a lab that grows (sim up) wires new servers to
        # outlets of a PDU whose agent keeps running.
        with contextlib.suppress(OSError, ValueError):
            config = json.loads((self.state_dir / "pdu.json").read_text())
            self.hooks = config.get("hooks", self.hooks)
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

    def act(self, outlet: int, action: str) -> None:
        if action == "reboot":
            self.reboot(outlet)
        else:
            self.switch(outlet, action == "on")

    # -- the MIB view ----------------------------------------------------------

    def _status_string(self, obj: MibObject) -> str:
        s = obj.status_string
        assert s is not None
        parts = [
            s.token("on" if self.on[n] else "off") if n <= self.count else s.token("not-available")
            for n in range(1, s.positions + 1)
        ]
        return s.separator.join(parts)

    def _answer(self, obj: MibObject, outlet: int | None) -> tuple[str, str]:
        kind = "integer" if obj.type == "INTEGER" else "string"
        if obj.status_string is not None:
            return kind, self._status_string(obj)
        if obj.reads and outlet is not None:
            state = "on" if self.on[outlet] else "off"
            return kind, str(next(v for v, m in obj.reads.items() if m == state))
        return kind, (obj.value or "").replace("{outlet}", str(outlet or 0))

    def table(self) -> dict[Oid, tuple[str, str]]:
        rows: dict[Oid, tuple[str, str]] = {}
        for obj in self.record.objects:
            if obj.index == "outlet":
                for n in self.on:
                    rows[_oid(obj.instance(n))] = self._answer(obj, n)
            else:
                rows[_oid(obj.instance())] = self._answer(obj, None)
        return rows

    def _target(self, oid: Oid) -> tuple[MibObject, int | None] | None:
        for obj in self.record.objects:
            base = _oid(obj.oid)
            if oid[:-1] != base:
                continue
            if obj.index == "outlet":
                return (obj, oid[-1]) if oid[-1] in self.on else None
            return (obj, None) if oid[-1] == 0 else None
        return None

    def set(self, oid: Oid, kind: str, value: str) -> str:
        target = self._target(oid)
        if target is None:
            return NOT_WRITABLE
        obj, outlet = target
        if obj.access != "read-write":
            return NOT_WRITABLE
        if obj.status_string is not None:
            return self._set_status_string(obj, kind, value)
        if obj.type != "INTEGER" or kind != "integer":
            return WRONG_TYPE
        try:
            number = int(value)
        except ValueError:
            return WRONG_TYPE
        if number not in obj.values:
            return WRONG_VALUE  # outside the MIB's enumeration
        action = obj.writes.get(number)
        if action is None or outlet is None:
            return INCONSISTENT  # in the MIB, but this simulated unit does not do it
        self.act(outlet, action)
        return "DONE"

    def _set_status_string(self, obj: MibObject, kind: str, value: str) -> str:
        s = obj.status_string
        assert s is not None
        if kind != "string":
            return WRONG_TYPE
        parts = value.strip().strip('"').split(s.separator)
        if len(parts) != s.positions:
            return WRONG_VALUE
        wanted: dict[int, bool] = {}
        for n, part in enumerate(parts, start=1):
            meaning = s.tokens.get(part.strip())
            if n > self.count:
                if meaning != "not-available":
                    return WRONG_VALUE
            elif meaning not in ("on", "off"):
                return WRONG_VALUE
            else:
                wanted[n] = meaning == "on"
        for n, on in wanted.items():
            if on != self.on[n]:
                self.switch(n, on)
        return "DONE"


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
