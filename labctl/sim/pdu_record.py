"""A PDU's device record: what a vendor's MIB says the unit answers, as data.

The simulated PDUs must not answer from labctl's own profiles
(``labctl/drivers/pdu_profiles.py``): a wrong OID or value there would then be
served back and no test could see it. Instead each simulated PDU answers from a
record written by hand from the vendor's MIB (``tests/peers/pdu/*.yaml``, one
file per device model, each object with the MIB object it was read from). This
module reads a record and finds the one an inventory's ``model:`` names; the
agent (``pdu_outlets.py``) serves it. Pure: paths in, records out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabctlError

# The records sit with the other test peers: they are witnesses labctl did not
# write, so they live outside the package (the simulated lab runs from a checkout).
RECORDS_DIR = Path(__file__).resolve().parents[2] / "tests" / "peers" / "pdu"

STATES = ("on", "off")
ACTIONS = ("on", "off", "reboot")
TYPES = ("INTEGER", "DisplayString")
ACCESS = ("read-only", "read-write")


@dataclass(frozen=True)
class StatusString:
    """One DisplayString holding every outlet's state, e.g. ``"1,0,-1"``."""

    separator: str
    positions: int
    tokens: Mapping[str, str]  # token -> meaning (on, off, or a fault's name)

    def token(self, meaning: str) -> str:
        return next(t for t, m in self.tokens.items() if m == meaning)


@dataclass(frozen=True)
class MibObject:
    oid: str  # without the instance: the column, or the scalar's OID
    name: str
    type: str
    access: str
    index: str | None = None  # "outlet": one instance per outlet; None: scalar (.0)
    values: Mapping[int, str] = field(default_factory=dict)  # the MIB's enumeration
    reads: Mapping[int, str] = field(default_factory=dict)  # value -> on/off
    writes: Mapping[int, str] = field(default_factory=dict)  # value -> on/off/reboot
    value: str | None = None  # a fixed answer; "{outlet}" is the outlet number
    status_string: StatusString | None = None

    def instance(self, outlet: int | None = None) -> str:
        return f"{self.oid}.{outlet if self.index == 'outlet' else 0}"


@dataclass(frozen=True)
class DeviceRecord:
    path: Path
    vendor: str
    model: str
    models: str  # regular expression over an inventory's model text
    enterprise: str
    sys_object_id: str
    sys_descr: str
    objects: tuple[MibObject, ...]

    def find(self, oid: str) -> MibObject | None:
        return next((o for o in self.objects if o.oid == oid.strip(".")), None)

    def first_readable(self) -> MibObject:
        """The object readiness probes ask for: a state the agent computes."""
        for obj in self.objects:
            if obj.reads or obj.status_string:
                return obj
        raise LabctlError(f"device record {self.path.name}: no object reads an outlet's state")


def _fail(path: Path, where: str, why: str) -> LabctlError:
    return LabctlError(f"device record {path}: {where}: {why}")


def _oid(path: Path, where: str, raw: Any) -> str:
    text = str(raw).strip(".")
    if not re.fullmatch(r"\d+(\.\d+)+", text):
        raise _fail(path, where, f"{raw!r} is not a dotted OID")
    return text


def _int_map(path: Path, where: str, raw: Any, allowed: tuple[str, ...] | None) -> dict[int, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be a mapping of integer values")
    out: dict[int, str] = {}
    for key, meaning in raw.items():
        if not isinstance(key, int) or isinstance(key, bool):
            raise _fail(path, where, f"key {key!r} is not an integer")
        if allowed is not None and meaning not in allowed:
            raise _fail(path, where, f"{meaning!r} is not one of {', '.join(allowed)}")
        out[key] = str(meaning)
    return out


def _object(path: Path, n: int, raw: Any) -> MibObject:
    where = f"objects[{n}]"
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be a mapping")
    for key in ("oid", "name", "type", "access"):
        if key not in raw:
            raise _fail(path, where, f"{key} is missing")
    where = f"objects[{n}] ({raw['name']})"
    if raw["type"] not in TYPES:
        raise _fail(path, where, f"type {raw['type']!r} is not one of {', '.join(TYPES)}")
    if raw["access"] not in ACCESS:
        raise _fail(path, where, f"access {raw['access']!r} is not one of {', '.join(ACCESS)}")
    if raw.get("index") not in (None, "outlet"):
        raise _fail(path, where, "index may only be outlet")
    values = _int_map(path, f"{where}.values", raw.get("values"), None)
    reads = _int_map(path, f"{where}.reads", raw.get("reads"), STATES)
    writes = _int_map(path, f"{where}.writes", raw.get("writes"), ACTIONS)
    for number in [*reads, *writes]:
        if number not in values:
            raise _fail(path, where, f"value {number} is not in the MIB's enumeration (values)")
    status = None
    if "status_string" in raw:
        s = raw["status_string"]
        tokens = {str(k): str(v) for k, v in s.get("tokens", {}).items()}
        if not {"on", "off", "not-available"} <= set(tokens.values()):
            raise _fail(path, where, "status_string.tokens must name on, off and not-available")
        status = StatusString(str(s.get("separator", ",")), int(s["positions"]), tokens)
    value = raw.get("value")
    return MibObject(
        oid=_oid(path, f"{where}.oid", raw["oid"]),
        name=str(raw["name"]),
        type=str(raw["type"]),
        access=str(raw["access"]),
        index=raw.get("index"),
        values=values,
        reads=reads,
        writes=writes,
        value=None if value is None else str(value),
        status_string=status,
    )


def load(path: Path) -> DeviceRecord:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise LabctlError(f"device record {path}: cannot be read: {error}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("device"), dict):
        raise _fail(path, "device", "is missing")
    device = raw["device"]
    for key in ("vendor", "model", "models", "enterprise", "sys_object_id", "sys_descr"):
        if key not in device:
            raise _fail(path, f"device.{key}", "is missing")
    objects = tuple(_object(path, n, o) for n, o in enumerate(raw.get("objects") or []))
    enterprise = _oid(path, "device.enterprise", device["enterprise"])
    for obj in objects:
        if not obj.oid.startswith(enterprise + "."):
            raise _fail(path, obj.name, f"{obj.oid} is outside the enterprise {enterprise}")
    return DeviceRecord(
        path=path,
        vendor=str(device["vendor"]),
        model=str(device["model"]),
        models=str(device["models"]),
        enterprise=enterprise,
        sys_object_id=_oid(path, "device.sys_object_id", device["sys_object_id"]),
        sys_descr=str(device["sys_descr"]),
        objects=objects,
    )


def all_records(directory: Path = RECORDS_DIR) -> list[DeviceRecord]:
    return [load(p) for p in sorted(directory.glob("*.yaml"))]


def for_model(model: str, where: str, directory: Path = RECORDS_DIR) -> DeviceRecord:
    """The record whose model pattern an inventory's ``model:`` text matches."""
    records = all_records(directory)
    found = [r for r in records if re.search(r.models, model, re.IGNORECASE)]
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{r.vendor} {r.model}" for r in records)
    if not found:
        raise LabctlError(
            f"{where}: no device record in {directory} matches model {model!r}, so the "
            f"simulated lab has nothing true to answer with (records: {known}). Write one "
            "from the vendor's MIB (docs/power.md says how)."
        )
    names = ", ".join(r.path.name for r in found)
    raise LabctlError(f"{where}: model {model!r} matches more than one device record: {names}")
