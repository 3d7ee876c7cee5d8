"""The pre-commit hook, run by the real `pre-commit` in a lab repository as an operator would.

A lab repository's `.pre-commit-config.yaml` names this project by path and pins
HEAD's commit, exactly as it would name the published repository and a tag; the
tool clones it, builds labctl into its own virtualenv (its dependencies come from
PyPI) and runs the hook from `.pre-commit-hooks.yaml`. So the test exercises the
committed hook file and the committed labctl: commit them before running it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REFERENCE, ROOT

pytestmark = pytest.mark.tools
BAD = FIXTURES / "bad" / "unknown-port.yaml"


@dataclass
class LabRepo:
    path: Path
    env: dict[str, str]

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["git", *args], self.path, self.env, check=check)

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        tool = [sys.executable, "-m", "pre_commit", *args]
        return _run(tool, self.path, self.env, check=False, timeout=900)


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} failed:\n{done.stdout}\n{done.stderr}")
    return done


def _expected(fixture: Path) -> tuple[str, int]:
    match = re.search(r"^# expect: (LAB\d+) line (\d+)$", fixture.read_text(), re.M)
    assert match, f"{fixture} has no '# expect:' header"
    return match.group(1), int(match.group(2))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRepo]:
    base = tmp_path_factory.mktemp("pre-commit")
    env = {
        **os.environ,
        # pre-commit's cache of hook environments: fresh, so labctl is built from the clone.
        "PRE_COMMIT_HOME": str(base / "cache"),
        "GIT_AUTHOR_NAME": "Lab Operator",
        "GIT_AUTHOR_EMAIL": "operator@lab.invalid",
        "GIT_COMMITTER_NAME": "Lab Operator",
        "GIT_COMMITTER_EMAIL": "operator@lab.invalid",
        # A user's global git hooks or templates must not change what the test sees.
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    head = _run(["git", "rev-parse", "HEAD"], ROOT, env).stdout.strip()
    committed = _run(["git", "show", "HEAD:.pre-commit-hooks.yaml"], ROOT, env, check=False)
    assert committed.returncode == 0, "commit .pre-commit-hooks.yaml first: pre-commit clones HEAD"
    assert committed.stdout == (ROOT / ".pre-commit-hooks.yaml").read_text(), (
        ".pre-commit-hooks.yaml differs from HEAD's: commit it, pre-commit runs HEAD's"
    )
    clone = base / "labctl"
    _run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], base, env)

    repo = LabRepo(base / "lab", env)
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch=main")
    # The three lines docs/ci.md tells a lab repository to add, with a path for the URL.
    (repo.path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {clone}\n    rev: {head}\n    hooks: [{{id: labctl-validate}}]\n"
    )
    (repo.path / "README.md").write_text("The lab.\n")
    repo.git("add", ".")
    repo.git("commit", "--quiet", "-m", "the lab's repository")
    installed = repo.pre_commit("install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield repo
    shutil.rmtree(base, ignore_errors=True)


def test_a_commit_with_a_bad_inventory_is_refused_naming_the_check_and_line(lab: LabRepo) -> None:
    check_id, line = _expected(BAD)
    shutil.copy(BAD, lab.path / "inventory.yaml")
    lab.git("add", "inventory.yaml")
    refused = lab.git("commit", "-m", "a NIC cabled to a port the switch lacks", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "labctl validate" in output and "Failed" in output, output
    assert re.search(rf"inventory\.yaml:{line}:\d+: error {check_id} ", output), output
    assert "Traceback" not in output
    # Nothing was committed: the last commit is still the repository's first.
    assert lab.git("rev-list", "--count", "HEAD").stdout.strip() == "1"


def test_a_good_inventory_is_committed(lab: LabRepo) -> None:
    shutil.copy(REFERENCE, lab.path / "inventory.yaml")
    lab.git("add", "inventory.yaml")
    done = lab.git("commit", "-m", "the reference lab", check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"labctl validate\.+Passed", output), output


def test_only_inventory_files_are_checked(lab: LabRepo) -> None:
    # A YAML file that is not an inventory (here: broken as one) is not the hook's business.
    (lab.path / "notes.yaml").write_text("servers: not a list\n")
    shared = lab.path / "labs" / "sthlm"
    shared.mkdir(parents=True)
    shutil.copy(BAD, shared / "inventory.yml")
    lab.git("add", ".")
    run = lab.pre_commit("run", "--files", "notes.yaml", "labs/sthlm/inventory.yml")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    check_id, line = _expected(BAD)
    assert re.search(rf"labs/sthlm/inventory\.yml:{line}:\d+: error {check_id} ", output), output
    assert "notes.yaml" not in output, output
