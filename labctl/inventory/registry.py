"""The registry of semantic checks: what a check is, its id, severity and summary.

``checks.py`` holds the checks and runs them; a family of checks that lives in a
module of its own (``checks_calico.py``, the BGP fabric's) registers through
this module, so it never imports the module that imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from labctl.inventory.model import Inventory
from labctl.inventory.problems import DocPath, Severity, Stage

Finding = tuple[DocPath, str]
CheckFn = Callable[[Inventory], Iterable[Finding]]
# A lab check also needs the lab kind, which the inventory does not hold: the same
# file drives a real lab and the simulated one (``labctl sim up`` boots it). True:
# the simulated lab, where the finding is a note; False: a real lab, where it counts.
LabCheckFn = Callable[[Inventory, bool], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity
    summary: str
    fn: CheckFn | None  # None: reported by the loader, the schema or a lab check
    stage: Stage = Stage.CHECKS
    # Set for a check that needs the lab kind (``lab_check``): it runs only where that
    # is known (``labctl plan``/``bootstrap``, ``labctl validate --lab``).
    lab_fn: LabCheckFn | None = None


# Reported by the loader and the schema; listed so the docs and ids are complete.
LOAD_CHECKS = (
    Check(
        "LAB001",
        Severity.ERROR,
        "The file is not valid YAML (syntax, tags, merge keys).",
        None,
        Stage.YAML,
    ),
    Check("LAB002", Severity.ERROR, "A mapping has the same key twice.", None, Stage.YAML),
    Check(
        "LAB003",
        Severity.ERROR,
        "A field the schema does not know (often a typo).",
        None,
        Stage.SCHEMA,
    ),
    Check("LAB004", Severity.ERROR, "A required field is missing.", None, Stage.SCHEMA),
    Check(
        "LAB005", Severity.ERROR, "A value has the wrong type, form or range.", None, Stage.SCHEMA
    ),
)

REGISTRY: dict[str, Check] = {c.id: c for c in LOAD_CHECKS}

# Ids whose check no longer exists, with why; ids are never reused, so a new check never
# takes one of these. docs/checks.md lists them.
RETIRED: dict[str, str] = {
    "LAB070": "etcd in a container named no image: cluster.etcd.version now defaults to "
    "the version labctl is tested with, so there is always one.",
    "LAB084": "Ceph in a container named no image: cluster.ceph.version now defaults to "
    "the release labctl is tested with, so there is always one.",
}


def check(check_id: str, severity: Severity, summary: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if check_id in REGISTRY:
            raise RuntimeError(f"check id {check_id} registered twice")
        REGISTRY[check_id] = Check(check_id, severity, summary, fn)
        return fn

    return register


def lab_check(
    check_id: str, severity: Severity, summary: str
) -> Callable[[LabCheckFn], LabCheckFn]:
    """Register a check that needs the lab kind: ``fn(inventory, simulated)``."""

    def register(fn: LabCheckFn) -> LabCheckFn:
        if check_id in REGISTRY:
            raise RuntimeError(f"check id {check_id} registered twice")
        REGISTRY[check_id] = Check(check_id, severity, summary, None, lab_fn=fn)
        return fn

    return register


E, W = Severity.ERROR, Severity.WARNING
