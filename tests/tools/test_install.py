"""labctl installed as a tool: its wheel in a fresh virtualenv, run outside the checkout.

What pipx, `uv tool install` or `pip install labctl-*.whl` give an operator: the
built wheel and its dependencies, nothing from this source tree (the commands run
in a temporary lab directory, so `import labctl` cannot find the checkout). Every
file labctl needs at run time must be in the wheel, and a failure must be a
sentence. Dependencies come from PyPI, at the versions in requirements.lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REFERENCE, ROOT

pytestmark = pytest.mark.tools
# The reference lab's management network (BMCs, PDUs) moved onto a loopback range
# nothing listens on: `plan power` really tries them, and only this machine is reached.
MGMT, LOOPBACK = "10.31.0.", "127.59.0."
SECRETS = {
    "LABCTL_BMC_PASSWORD_FOHN": "fohn-bmc-pw",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "chequita-bmc-pw",
    "LABCTL_BMC_PASSWORD_WIND": "wind-bmc-pw",
    "LABCTL_PDU_AUTH_KEY": "pdu-auth-key-1",
    "LABCTL_PDU_PRIV_KEY": "pdu-priv-key-1",
}


@dataclass
class Installed:
    venv: Path
    lab: Path

    def labctl(
        self, *args: str, env: dict[str, str] | None = None, path: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("LABCTL_")
        }
        environ.update({"COLUMNS": "200", **(env or {})})
        if path is not None:
            environ["PATH"] = path
        done = subprocess.run(
            [str(self.venv / "bin" / "labctl"), *args],
            cwd=self.lab,
            env=environ,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        return done


def _run(argv: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    # Not under pytest's tmp_path (0700, root's): an unprivileged user must be able to
    # run the installed labctl too.
    base = Path(tempfile.mkdtemp(prefix="labctl-install-"))
    base.chmod(0o755)
    try:
        yield _install(base)
    finally:
        shutil.rmtree(base)


def _install(base: Path) -> Installed:
    dist = base / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        base,
    )
    (wheel,) = dist.glob("labctl-*.whl")
    venv = base / "venv"
    # The system's Python, as on an operator's machine (and readable by every user,
    # unlike an interpreter under root's home).
    system = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    _run([system, "-m", "venv", str(venv)], base)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run(
        [*pip, "--disable-pip-version-check", "-c", str(ROOT / "requirements.lock"), str(wheel)],
        base,
    )
    lab = base / "lab"
    lab.mkdir()
    (lab / "inventory.yaml").write_text(REFERENCE.read_text().replace(MGMT, LOOPBACK))
    return Installed(venv, lab)


def test_labctl_runs_from_the_wheel_not_the_checkout(installed: Installed) -> None:
    where = _run(
        [str(installed.venv / "bin" / "python"), "-c", "import labctl; print(labctl.__file__)"],
        installed.lab,
    )
    assert Path(where.strip()).is_relative_to(installed.venv), where
    version = installed.labctl("--version")
    assert version.returncode == 0 and version.stdout.startswith("labctl ")


def test_validate(installed: Installed) -> None:
    clean = installed.labctl("validate")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "inventory.yaml: valid" in clean.stdout
    shutil.copy(FIXTURES / "bad" / "enum-alias.yaml", installed.lab / "bad.yaml")
    bad = installed.labctl("validate", "bad.yaml")
    assert bad.returncode == 1
    assert "did you mean 'fedora-coreos'?" in bad.stdout
    # The schema the wheel ships is the one in the repository.
    schema = installed.labctl("schema")
    assert schema.stdout == (ROOT / "schemas" / "inventory.schema.json").read_text()


def test_inventory_show(installed: Installed) -> None:
    shown = installed.labctl("inventory", "show")
    assert shown.returncode == 0, shown.stderr
    for name in ("fohn", "chequita", "wind", "mgmt"):
        assert name in shown.stdout


def test_pki_mint_with_the_builtin_backend(installed: Installed) -> None:
    env = {"LABCTL_CA_PASSPHRASE": "a passphrase for the test CA"}
    minted = installed.labctl("pki", "mint", "--backend", "builtin", env=env)
    assert minted.returncode == 0, minted.stdout + minted.stderr
    ssl = installed.lab / "ssl"
    assert (ssl / "ca.pem").exists() and (ssl / "admin.pem").exists()
    assert (ssl / "admin-key.pem").stat().st_mode & 0o077 == 0
    checked = installed.labctl("pki", "check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all certificates valid" in checked.stdout


def test_pki_mint_with_cfssl_missing_names_the_package(installed: Installed) -> None:
    bare = str(installed.venv / "bin")  # no cfssl on this PATH
    env = {"LABCTL_CA_PASSPHRASE": "a passphrase for no CA"}
    # A lab of its own: the builtin test's certificates would leave nothing to mint.
    other = installed.lab.parent / "lab-cfssl"
    other.mkdir()
    shutil.copy(installed.lab / "inventory.yaml", other / "inventory.yaml")
    inventory = str(other / "inventory.yaml")
    done = installed.labctl(
        "pki", "mint", "-i", inventory, "--backend", "cfssl", env=env, path=bare
    )
    assert done.returncode != 0
    assert "apt-get install golang-cfssl" in done.stderr, done.stderr


def test_plan_power_that_cannot_reach_the_bmcs_fails_with_a_sentence(
    installed: Installed,
) -> None:
    # The whole-lab diff dry-runs each layer on its own: power is named as not asked.
    done = installed.labctl("plan", "power", env=SECRETS)
    assert done.returncode == 1
    said = done.stdout + done.stderr
    for server, address in (("fohn", "127.59.0.11"), ("wind", "127.59.0.13")):
        assert f"{server} BMC ({address}:623): power status: connection refused" in said
    assert "1. power: 0 step(s) would change; could not ask the rest" in done.stdout, said
    # The layer-by-layer dry run (bootstrap's) still stops at the first failed layer.
    done = installed.labctl("plan", "power", "--layers", env=SECRETS)
    assert done.returncode == 1
    said = done.stdout + done.stderr
    for server, address in (("fohn", "127.59.0.11"), ("wind", "127.59.0.13")):
        assert f"{server} BMC ({address}:623): power status: connection refused" in said
    assert "power failed; later layers were not run" in said


NOBODY = 65534


def test_an_unprivileged_user_validates_and_mints(installed: Installed) -> None:
    """No root needed: the installed labctl, run as nobody in a lab directory of its own."""
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run as an unprivileged user")
    lab = installed.lab.parent / "lab-nobody"
    lab.mkdir()
    shutil.copy(installed.lab / "inventory.yaml", lab / "inventory.yaml")
    os.chown(lab, NOBODY, NOBODY)
    os.chown(lab / "inventory.yaml", NOBODY, NOBODY)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(lab),
        "LABCTL_CA_PASSPHRASE": "nobody's CA passphrase",
    }
    for args in (["validate"], ["pki", "mint", "--backend", "builtin"], ["pki", "check"]):
        done = subprocess.run(
            [*as_nobody, str(installed.venv / "bin" / "labctl"), *args],
            cwd=lab, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    assert (lab / "ssl" / "ca.pem").stat().st_uid == NOBODY
