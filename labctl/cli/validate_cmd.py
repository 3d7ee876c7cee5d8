"""`labctl validate`: check inventories, for people and for CI."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from labctl.cli.options import DEFAULT_INVENTORY


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def validate(
    paths: list[Path] = typer.Argument(None, help="Inventory files (default: inventory.yaml)."),
    output_format: ValidateFormat = typer.Option(
        ValidateFormat.text, "--format", "-f", help="text, json, or github (workflow annotations)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
) -> None:
    """Check inventory files: YAML, schema and semantic checks (docs/checks.md).

    Exit 0 when clean, 1 when errors were found, 2 when a file cannot be read.

    Example: labctl validate inventory.yaml --format github
    """
    from labctl.errors import UsageError
    from labctl.inventory import format_problem, load_inventory

    files = paths or [DEFAULT_INVENTORY]
    reports: list[dict[str, object]] = []
    unreadable = failed = False
    for path in files:
        try:
            result = load_inventory(path)
        except UsageError as exc:
            unreadable = True
            typer.echo(f"labctl: {exc}", err=True)
            reports.append({"file": str(path), "readable": False, "error": str(exc)})
            continue
        bad = result.errors + (result.warnings if strict else [])
        failed = failed or bool(bad)
        if output_format is ValidateFormat.text:
            for p in result.problems:
                typer.echo(format_problem(p))
            verdict = "invalid" if bad else "valid"
            typer.echo(
                f"{path}: {verdict} "
                f"({len(result.errors)} error(s), {len(result.warnings)} warning(s))"
            )
        elif output_format is ValidateFormat.github:
            for p in result.problems:
                level = "error" if (p.severity == "error" or strict) else "warning"
                where = f"file={_gh_escape(p.file, True)}"
                if p.position:
                    where += f",line={p.position.line},col={p.position.column}"
                title = _gh_escape(p.check_id, True)
                message = _gh_escape(f"{p.path_text}: {p.message}" if p.path else p.message)
                typer.echo(f"::{level} {where},title={title}::{message}")
        reports.append(
            {
                "file": str(path),
                "readable": True,
                "valid": not bad,
                "errors": len(result.errors),
                "warnings": len(result.warnings),
                "problems": [p.as_dict() for p in result.problems],
            }
        )
    if output_format is ValidateFormat.json:
        typer.echo(json.dumps({"files": reports, "valid": not (failed or unreadable)}, indent=2))
    if unreadable:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)
