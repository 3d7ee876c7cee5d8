"""`labctl validate`: check inventories, for people and for CI."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.options import DEFAULT_INVENTORY

if TYPE_CHECKING:
    from labctl.cli import validate_formats as formats


class LabKind(StrEnum):
    real = "real"
    simulated = "simulated"


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"
    junit = "junit"


def validate(
    paths: list[Path] = typer.Argument(None, help="Inventory files (default: inventory.yaml)."),
    output_format: ValidateFormat = typer.Option(
        ValidateFormat.text,
        "--format",
        "-f",
        help="text, json, github (workflow annotations), sarif (SARIF 2.1.0, code scanning) "
        "or junit (JUnit XML test report).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    lab: LabKind | None = typer.Option(
        None,
        "--lab",
        help="The lab the inventory drives, real or simulated: runs the lab checks too "
        "(LAB120, LAB121), errors on a real lab, notes on the simulated one. Default: "
        "simulated inside `labctl sim env`'s environment, else they do not run (the "
        "inventory does not say which lab it drives).",
    ),
    inventory: Path | None = typer.Option(
        None,
        "--inventory",
        "-i",
        envvar="LABCTL_INVENTORY",
        help="Inventory file, as for every other command (env LABCTL_INVENTORY); "
        "checked with the files named as arguments.",
        show_default=False,
    ),
) -> None:
    """Check inventory files: YAML, schema and semantic checks (docs/checks.md).

    Exit 0 when clean, 1 when errors were found, 2 when a file cannot be read.

    Example: labctl validate inventory.yaml --format github (or: labctl validate -i inventory.yaml)
    """
    from labctl.cli import validate_formats as formats
    from labctl.errors import UsageError
    from labctl.inventory import format_note, format_problem, load_inventory

    simulated = _simulated(lab)

    files = [*(paths or []), *([inventory] if inventory is not None else [])]
    files = files or [DEFAULT_INVENTORY]
    reports: list[formats.FileReport] = []
    unreadable = failed = False
    for path in files:
        try:
            result = load_inventory(path, simulated)
        except UsageError as exc:
            unreadable = True
            typer.echo(f"labctl: {exc}", err=True)
            reports.append(formats.FileReport(str(path), None, str(exc)))
            if output_format is ValidateFormat.github:
                typer.echo("\n".join(formats.github_lines(reports[-1], strict)))
            continue
        report = formats.FileReport(str(path), result)
        reports.append(report)
        bad = result.errors + (result.warnings if strict else [])
        failed = failed or bool(bad)
        if output_format is ValidateFormat.text:
            for p in result.problems:
                typer.echo(format_problem(p))
            for p in result.notes:
                typer.echo(format_note(p))
            verdict = "invalid" if bad else "valid"
            typer.echo(
                f"{path}: {verdict} "
                f"({len(result.errors)} error(s), {len(result.warnings)} warning(s))"
            )
        elif output_format is ValidateFormat.github:
            for line in formats.github_lines(report, strict):
                typer.echo(line)
    if output_format is ValidateFormat.json:
        typer.echo(
            json.dumps(
                {"files": [_json(r, strict) for r in reports], "valid": not (failed or unreadable)},
                indent=2,
            )
        )
    elif output_format is ValidateFormat.sarif:
        typer.echo(formats.sarif_text(reports))
    elif output_format is ValidateFormat.junit:
        typer.echo(formats.junit_text(reports, strict))
    if unreadable:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


def _simulated(lab: LabKind | None) -> bool | None:
    """The lab kind for the lab checks: --lab, else the simulated lab when `labctl sim
    env`'s platform has BIRD standing in for calico-node (what the lab checks are
    about), else unknown (None): they do not run."""
    from labctl.cli.platform_choice import chosen

    if lab is not None:
        return lab is LabKind.simulated
    return True if chosen().bgp_stand_in() else None


def _json(report: formats.FileReport, strict: bool) -> dict[str, object]:
    result = report.result
    if result is None:
        return {"file": report.file, "readable": False, "error": report.unreadable}
    bad = result.errors + (result.warnings if strict else [])
    return {
        "file": report.file,
        "readable": True,
        "valid": not bad,
        "errors": len(result.errors),
        "warnings": len(result.warnings),
        "problems": [p.as_dict() for p in result.problems],
        "notes": [p.as_dict() for p in result.notes],
    }
