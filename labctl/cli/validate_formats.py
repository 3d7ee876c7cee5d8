"""What `labctl validate` prints for CI systems that read a format of their own.

GitHub reads workflow commands on a step's output; code-scanning dashboards
(GitHub's, GitLab's, Azure DevOps's) read SARIF 2.1.0; Jenkins, GitLab and most
other CI read JUnit XML test reports. Each renderer here takes the same list of
per-file results and carries the same check ids, lines, columns and severities as
the text format, so a lab sees one set of findings whichever view it uses.
Rendering is pure: files in, text out; the command decides where it goes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from labctl import __version__
from labctl.inventory import LoadResult, format_problem
from labctl.inventory.problems import Problem, Severity, Stage

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
_STAGES = list(Stage)
_NOT_RUN = {
    Stage.YAML: "not run: the file is not valid YAML",
    Stage.SCHEMA: "not run: the file does not match the schema",
}
_LAB_NOT_KNOWN = "not run: the lab kind is not known (--lab real or --lab simulated)"


@dataclass(frozen=True)
class FileReport:
    """One path given to `validate`: what loading it found, or why it could not be read."""

    file: str
    result: LoadResult | None
    unreadable: str | None = None


def _headline(p: Problem) -> str:
    return f"{p.path_text}: {p.message}" if p.path else p.message


# -- GitHub workflow commands -------------------------------------------------


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def github_lines(report: FileReport, strict: bool) -> list[str]:
    """`::error file=...,line=...,col=...,title=LABnnn::path: sentence`, one per finding."""
    if report.result is None:
        where = f"file={_gh_escape(report.file, True)}"
        return [f"::error {where},title=labctl::{_gh_escape(report.unreadable or 'unreadable')}"]
    lines = []
    for p in report.result.problems:
        level = "error" if (p.severity is Severity.ERROR or strict) else "warning"
        where = f"file={_gh_escape(p.file, True)}"
        if p.position:
            where += f",line={p.position.line},col={p.position.column}"
        title = _gh_escape(p.check_id, True)
        lines.append(f"::{level} {where},title={title}::{_gh_escape(_headline(p))}")
    return lines


# -- SARIF 2.1.0 ----------------------------------------------------------------


def _artifact(file: str) -> dict[str, str]:
    """A relative URI under %SRCROOT% (the working directory) where the path allows one.

    Code-scanning services match results to the repository's files by relative path,
    so a path under the working directory is given relative to it.
    """
    from urllib.parse import quote  # here: only SARIF needs it, and validate starts fast

    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return {"uri": path.as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": SRCROOT}


def _location(file: str, p: Problem | None) -> dict[str, object]:
    physical: dict[str, object] = {"artifactLocation": _artifact(file)}
    if p is not None and p.position:
        physical["region"] = {"startLine": p.position.line, "startColumn": p.position.column}
    location: dict[str, object] = {"physicalLocation": physical}
    if p is not None and p.path:
        location["logicalLocations"] = [{"fullyQualifiedName": p.path_text, "kind": "member"}]
    return location


def sarif_log(reports: list[FileReport]) -> dict[str, object]:
    """One run of labctl: its rules are the check registry, its results every finding.

    A result's level is its check's severity, as in the text format; `--strict`
    changes the exit code, not what a finding is.
    """
    from labctl.inventory.checks import REGISTRY

    checks = sorted(REGISTRY.values(), key=lambda c: c.id)
    index = {c.id: i for i, c in enumerate(checks)}
    rules = [
        {
            "id": c.id,
            "shortDescription": {"text": c.summary},
            "defaultConfiguration": {"level": str(c.severity)},
            "properties": {"stage": str(c.stage)},
        }
        for c in checks
    ]
    results: list[dict[str, object]] = []
    notifications: list[dict[str, object]] = []
    for report in reports:
        if report.result is None:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": report.unreadable or "cannot read the file"},
                    "locations": [_location(report.file, None)],
                }
            )
            continue
        for p in report.result.problems:
            result: dict[str, object] = {
                "ruleId": p.check_id,
                "level": str(p.severity),
                "message": {"text": _headline(p)},
                "locations": [_location(report.file, p)],
            }
            if p.check_id in index:
                result["ruleIndex"] = index[p.check_id]
            results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "labctl",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
                "invocations": [
                    {
                        "executionSuccessful": not notifications,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }


def sarif_text(reports: list[FileReport]) -> str:
    return json.dumps(sarif_log(reports), indent=2)


# -- JUnit XML ----------------------------------------------------------------------


def junit_text(reports: list[FileReport], strict: bool) -> str:
    """One testsuite per file, one testcase per check id (the whole registry).

    A check with errors has one `<failure type="LABnnn">` per finding, its text the
    finding's text-format line. A check with only warnings passes, as the exit code
    does, and lists them in its `<system-out>` (`--strict`: failures). A check that
    did not run, because an earlier pass (YAML, then the schema) found problems, is
    `<skipped>`: only checks that really did not run are skipped (a lab check, too,
    when the lab kind is not known). A file that cannot
    be read is a suite with one testcase in `<error>`.
    """
    import xml.etree.ElementTree as ET  # here: only JUnit needs it

    from labctl.inventory.checks import REGISTRY

    checks = sorted(REGISTRY.values(), key=lambda c: c.id)
    root = ET.Element("testsuites", name="labctl validate")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for report in reports:
        suite = ET.SubElement(root, "testsuite", name=report.file)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if report.result is None:
            case = ET.SubElement(suite, "testcase", classname=report.file, name="read the file")
            ET.SubElement(case, "error", type="unreadable", message=report.unreadable or "")
            counts["tests"] = counts["errors"] = 1
        else:
            reached = _STAGES.index(report.result.reached)
            for check in checks:
                summary = check.summary.rstrip(".")
                case = ET.SubElement(
                    suite, "testcase", classname=report.file, name=f"{check.id}: {summary}"
                )
                counts["tests"] += 1
                if _STAGES.index(check.stage) > reached:
                    ET.SubElement(case, "skipped", message=_NOT_RUN[report.result.reached])
                    counts["skipped"] += 1
                    continue
                if check.lab_fn is not None and report.result.simulated is None:
                    ET.SubElement(case, "skipped", message=_LAB_NOT_KNOWN)
                    counts["skipped"] += 1
                    continue
                found = [p for p in report.result.problems if p.check_id == check.id]
                failing = [p for p in found if p.severity is Severity.ERROR or strict]
                for p in failing:
                    failure = ET.SubElement(case, "failure", type=p.check_id, message=_headline(p))
                    failure.text = format_problem(p)
                if failing:
                    counts["failures"] += 1
                passing = [p for p in found if p not in failing]
                if passing:
                    out = ET.SubElement(case, "system-out")
                    out.text = "\n".join(format_problem(p) for p in passing)
        for key, value in counts.items():
            suite.set(key, str(value))
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
