"""`labctl doctor`: whether the lab is fit, in one command, before a bootstrap and after.

The command reads the inventory, has ``labctl/doctor/gather.py`` ask every device
and service at once within a bound, has ``labctl/doctor/checks.py`` judge the
answers, and prints the findings in the formats `labctl validate` speaks for
people and CI (text, JSON, GitHub workflow annotations, JUnit XML). Exit 0 fit,
1 problems, 2 unusable (no inventory, bad input).
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.bootstrap_cmd import StateDirOption
from labctl.cli.options import InventoryOption

if TYPE_CHECKING:
    from labctl.doctor.checks import Finding


class DoctorFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    junit = "junit"


def doctor(
    inventory: Path = InventoryOption,
    output: DoctorFormat = typer.Option(
        DoctorFormat.text,
        "--output",
        "-o",
        help="text for people, json for programs, github (workflow annotations) or junit "
        "(JUnit XML test report).",
    ),
    only: list[str] = typer.Option(
        [], "--only", metavar="CHECK", help="Run only this check (DOC001...); repeat for more."
    ),
    skip: list[str] = typer.Option(
        [], "--skip", metavar="CHECK", help="Do not run this check; repeat for more."
    ),
    timeout: float = typer.Option(
        2.0, "--timeout", min=0.1, help="Seconds each device or service may take to answer."
    ),
    bound: float = typer.Option(
        8.0, "--bound", min=0.5, help="Seconds the whole run may take; silent asks fail."
    ),
    clock_bound: float = typer.Option(
        1.0, "--clock-bound", min=0.0, help="Largest clock skew of a node (DOC021), seconds."
    ),
    min_free: float = typer.Option(
        10.0, "--min-free", min=0.0, max=100.0, help="Least free space on data paths, % (DOC022)."
    ),
    state_dir: Path = StateDirOption,
) -> None:
    """Say whether the lab is fit: BMCs, PDUs, SSH, clocks, disks, certificates, services.

    Every device and service is asked at once, each within --timeout, the whole run
    within --bound. etcd, Kubernetes, Ceph and BGP are read as their status commands
    read them, once their layer has run on this lab. Checks: docs/doctor.md.
    Exit 0 fit (warnings allowed), 1 problems, 2 unusable (no inventory, bad input).

    Example: labctl doctor -o github --skip DOC050
    """
    import datetime as dt

    from labctl.cli.platform_choice import chosen, require_inventory
    from labctl.doctor.checks import REGISTRY, Bounds, Severity, not_run, verdicts
    from labctl.doctor.gather import cert_window, gather
    from labctl.errors import UsageError

    unknown = sorted({c for c in (*only, *skip) if c.upper() not in REGISTRY})
    if unknown:
        raise UsageError(
            f"no doctor check {', '.join(unknown)}; checks are {', '.join(sorted(REGISTRY))} "
            "(docs/doctor.md)"
        )
    wanted = {c.upper() for c in only} or set(REGISTRY)
    wanted -= {c.upper() for c in skip}
    inv = require_inventory(inventory)
    start = time.monotonic()
    answers = gather(
        inv,
        inventory.parent,
        state_dir,
        chosen(),
        timeout=timeout,
        bound=bound,
        wanted=wanted,
    )
    bounds = Bounds(clock_bound, min_free, cert_window(inv))
    findings = [
        f for f in verdicts(answers, dt.datetime.now(dt.UTC), bounds) if f.check_id in wanted
    ]
    skipped = {c: why for c, why in not_run(answers).items() if c in wanted}
    skipped |= {c: "not selected (--only/--skip)" for c in REGISTRY if c not in wanted}
    took = time.monotonic() - start
    fit = not any(f.severity is Severity.ERROR for f in findings)
    if output is DoctorFormat.json:
        typer.echo(json.dumps(_document(findings, skipped, fit, took, answers), indent=2))
    elif output is DoctorFormat.github:
        for line in _github(findings, str(inventory)):
            typer.echo(line)
    elif output is DoctorFormat.junit:
        typer.echo(_junit(findings, skipped))
    else:
        _text(findings, skipped, fit, took)
    if not fit:
        raise typer.Exit(1)


def _document(
    findings: list[Finding], skipped: dict[str, str], fit: bool, took: float, answers: object
) -> dict[str, object]:
    from labctl.doctor.checks import Answers

    assert isinstance(answers, Answers)
    return {
        "fit": fit,
        "seconds": round(took, 2),
        "findings": [f.as_dict() for f in findings],
        "not_run": dict(sorted(skipped.items())),
        "bmcs": [
            {
                "server": a.server,
                "configured": a.configured,
                "speaks": a.speaks,
                "cipher_suites": {
                    str(s): ("accepted" if why is None else why) for s, why in a.suites.items()
                },
                "identity": a.identity,
            }
            for a in answers.bmcs
        ],
        "clocks": {
            a.node: round(a.clock_offset, 3) for a in answers.nodes if a.clock_offset is not None
        },
    }


def _text(findings: list[Finding], skipped: dict[str, str], fit: bool, took: float) -> None:
    for f in findings:
        typer.echo(f"{f.check_id} {f.severity}: {f.sentence}")
        typer.echo(f"    fix: {f.fix}")
    for check, why in sorted(skipped.items()):
        if not why.startswith("not selected"):
            typer.echo(f"{check} not run: {why}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    verdict = "fit" if fit else "not fit"
    typer.echo(f"lab {verdict}: {errors} problem(s), {warnings} warning(s) in {took:.1f} s")


def _github(findings: list[Finding], inventory: str) -> list[str]:
    """`::error file=inventory,title=DOCnnn::sentence (fix: ...)`, one per finding."""
    from labctl.cli.validate_formats import _gh_escape

    where = f"file={_gh_escape(inventory, True)}"
    return [
        f"::{f.severity} {where},title={_gh_escape(f.check_id, True)}::"
        f"{_gh_escape(f'{f.sentence} (fix: {f.fix})')}"
        for f in findings
    ]


def _junit(findings: list[Finding], skipped: dict[str, str]) -> str:
    """One testcase per check: a failure per error, warnings in system-out, skipped
    with the reason when the check did not run."""
    import xml.etree.ElementTree as ET

    from labctl.doctor.checks import REGISTRY

    root = ET.Element("testsuites", name="labctl doctor")
    suite = ET.SubElement(root, "testsuite", name="labctl doctor")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for check in sorted(REGISTRY.values(), key=lambda c: c.id):
        case = ET.SubElement(
            suite, "testcase", classname="labctl doctor", name=f"{check.id}: {check.summary}"
        )
        counts["tests"] += 1
        if check.id in skipped:
            ET.SubElement(case, "skipped", message=skipped[check.id])
            counts["skipped"] += 1
            continue
        mine = [f for f in findings if f.check_id == check.id]
        errors = [f for f in mine if f.severity == "error"]
        for f in errors:
            failure = ET.SubElement(case, "failure", type=f.check_id, message=f.sentence)
            failure.text = f"{f.sentence}\nfix: {f.fix}"
        if errors:
            counts["failures"] += 1
        warnings = [f for f in mine if f.severity != "error"]
        if warnings:
            ET.SubElement(case, "system-out").text = "\n".join(f.sentence for f in warnings)
    for key, value in counts.items():
        suite.set(key, str(value))
        if key != "skipped":  # the JUnit XSD allows no skipped count on testsuites
            root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
