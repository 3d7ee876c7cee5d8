"""The composite GitHub Action (action.yml), its `run:` steps run as the runner runs them.

No runner here, so the test plays its part: it reads action.yml, replaces each
`${{ ... }}` expression with the value the runner would give it (an expression
the test does not know fails the test, so a new one cannot slip by untested), and
runs each script with `bash --noprofile --norc -eo pipefail` (the runner's `shell:
bash`) in a temporary lab workspace. The one `uses:` step (setup-python) is played
by giving its output, the path of a Python >= 3.11, as this interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES, REFERENCE, ROOT

pytestmark = pytest.mark.tools
ACTION = ROOT / "action.yml"
BAD = FIXTURES / "bad"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


def _expected(fixture: Path) -> tuple[str, int]:
    match = re.search(r"^# expect: (LAB\d+) line (\d+)$", fixture.read_text(), re.M)
    assert match, f"{fixture} has no '# expect:' header"
    return match.group(1), int(match.group(2))


@dataclass
class Runner:
    """What the runner gives a step: a workspace, $RUNNER_TEMP, the action's inputs."""

    workspace: Path
    temp: Path

    def expressions(self, inputs: Mapping[str, str]) -> dict[str, str]:
        declared = _action()["inputs"]
        values = {f"inputs.{name}": str(spec.get("default", "")) for name, spec in declared.items()}
        values.update({f"inputs.{name}": value for name, value in inputs.items()})
        values["github.action_path"] = str(ROOT)
        values["steps.python.outputs.python-path"] = sys.executable
        return values

    def substitute(self, text: str, values: Mapping[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in values, f"action.yml uses ${{{{ {name} }}}}, which the test cannot give"
            return values[name]

        return EXPRESSION.sub(one, text)

    def run_step(
        self, step: dict[str, Any], inputs: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        assert step.get("shell") == "bash", f"step {step.get('name')!r}: say `shell: bash`"
        values = self.expressions(inputs)
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env.update(
            {
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_ACTION_PATH": str(ROOT),
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_ACTIONS": "true",
            }
        )
        env.update({k: self.substitute(str(v), values) for k, v in step.get("env", {}).items()})
        script = self.temp / "step.sh"
        script.write_text(self.substitute(step["run"], values))
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900,
        )


def _steps() -> list[dict[str, Any]]:
    action = _action()
    assert action["runs"]["using"] == "composite"
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """A runner on which every step before the last (setup, install) has run once."""
    base = tmp_path_factory.mktemp("action")
    runner = Runner(base / "workspace", base / "runner-temp")
    runner.workspace.mkdir()
    runner.temp.mkdir()
    *setup, _ = _steps()
    for step in setup:
        if "uses" in step:
            # Played by the test: its only output is given by expressions().
            assert step["uses"].startswith("actions/setup-python@"), step
            assert step.get("id") == "python"
            continue
        done = runner.run_step(step, {})
        assert done.returncode == 0, f"{step.get('name')}:\n{done.stdout}\n{done.stderr}"
    assert (runner.temp / "labctl-venv" / "bin" / "labctl").exists()
    return runner


def validate(runner: Runner, **inputs: str) -> subprocess.CompletedProcess[str]:
    last = _steps()[-1]
    assert "labctl" in last["run"] and "validate" in last["run"]
    return runner.run_step(last, inputs)


def _annotations(stdout: str) -> list[dict[str, str]]:
    found = []
    for line in stdout.splitlines():
        match = re.match(r"::(error|warning) (.*?)::(.*)$", line)
        if match:
            props = dict(p.split("=", 1) for p in match.group(2).split(","))
            found.append({"level": match.group(1), **props, "message": match.group(3)})
    return found


def test_every_input_is_documented_in_docs_ci_md() -> None:
    docs = (ROOT / "docs" / "ci.md").read_text()
    for name, spec in _action()["inputs"].items():
        assert f"| `{name}` |" in docs, f"docs/ci.md: add the input {name!r} to the table"
        assert spec.get("description"), f"action.yml: describe the input {name!r}"


def test_the_default_path_is_inventory_yaml_and_a_clean_one_passes(runner: Runner) -> None:
    shutil.copy(REFERENCE, runner.workspace / "inventory.yaml")
    done = validate(runner)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _annotations(done.stdout) == []


def test_findings_are_annotated_on_their_file_and_line(runner: Runner) -> None:
    cases = {
        "labs/sthlm/inventory.yaml": BAD / "unknown-port.yaml",
        "labs/gbg/inventory.yaml": BAD / "mac-duplicate.yaml",
    }
    for rel, fixture in cases.items():
        (runner.workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fixture, runner.workspace / rel)
    done = validate(runner, paths="inventory.yaml\nlabs/*/inventory.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    annotations = _annotations(done.stdout)
    for rel, fixture in cases.items():
        check_id, line = _expected(fixture)
        mine = [a for a in annotations if a["file"] == rel and a["title"] == check_id]
        assert mine, f"no {check_id} annotation for {rel}: {annotations}"
        assert {a["line"] for a in mine} >= {str(line)}, mine
        assert all(a["level"] == "error" and a["col"].isdigit() for a in mine)
    assert not [a for a in annotations if a["file"] == "inventory.yaml"]


def test_strict_makes_warnings_fail(runner: Runner) -> None:
    shutil.copy(BAD / "psus-one-pdu.yaml", runner.workspace / "warned.yaml")
    check_id, line = _expected(BAD / "psus-one-pdu.yaml")
    lenient = validate(runner, paths="warned.yaml")
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    (warning,) = _annotations(lenient.stdout)
    assert (warning["level"], warning["title"], warning["line"]) == ("warning", check_id, str(line))
    strict = validate(runner, paths="warned.yaml", strict="true")
    assert strict.returncode == 1
    assert [a["level"] for a in _annotations(strict.stdout)] == ["error"]


def test_sarif_file_records_the_same_findings(runner: Runner) -> None:
    fixture = BAD / "unknown-port.yaml"
    shutil.copy(fixture, runner.workspace / "sarif-case.yaml")
    check_id, line = _expected(fixture)
    done = validate(runner, paths="sarif-case.yaml", **{"sarif-file": "labctl.sarif"})
    assert done.returncode == 1, done.stdout + done.stderr
    log = json.loads((runner.workspace / "labctl.sarif").read_text())
    (result,) = log["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert result["ruleId"] == check_id
    assert physical["artifactLocation"]["uri"] == "sarif-case.yaml"
    assert physical["region"]["startLine"] == line
    (annotation,) = _annotations(done.stdout)
    assert (annotation["title"], annotation["line"]) == (check_id, str(line))


def test_a_path_that_matches_nothing_fails_the_step(runner: Runner) -> None:
    done = validate(runner, paths="labs/nowhere/*.yaml")
    assert done.returncode == 2
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr
