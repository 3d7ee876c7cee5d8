"""What `labctl` imports to start: a quick command pays only for what it uses.

Start-up is most of what `labctl --help` and `labctl validate` cost (issue 28:
validate at a fifth of ansible-inventory's time). These run the real console entry
in a fresh interpreter and read ``sys.modules`` at exit: `--help` lists every command
without importing any command's module, and `validate` imports neither the other
commands nor the SSH, crypto, SNMP, IPMI or async stacks. The command line built
that way must read exactly as the whole tree does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.cli import main

ROOT = Path(__file__).resolve().parents[2]

COMMAND_MODULES = {
    f"labctl.cli.{m}"
    for m in (
        "bgp_cmd",
        "boot_cmd",
        "bootstrap_cmd",
        "ceph_cmd",
        "etcd_cmd",
        "inventory_cmd",
        "kubernetes_cmd",
        "os_cmd",
        "pki_cmd",
        "power_cmd",
        "schema_cmd",
        "sim_cmd",
        "switch_cmd",
        "validate_cmd",
    )
}
# Stacks only some commands need (SSH, crypto, SNMP, IPMI, asyncio, the engine and
# layers, the pure-Python JSON Schema explainer used only for invalid documents).
HEAVY = {
    "paramiko",
    "cryptography",
    "pysnmp",
    "pyipmi",
    "asyncio",
    "jsonschema",
    "labctl.engine",
    "labctl.layers",
    "labctl.drivers",
    "labctl.sim.lab",
}
NOT_FOR_HELP = COMMAND_MODULES | HEAVY | {"labctl.inventory", "yaml", "jsonschema_rs", "pydantic"}
NOT_FOR_VALIDATE = (COMMAND_MODULES - {"labctl.cli.validate_cmd"}) | HEAVY | {"rich"}

_PROBE = """
import json, sys
sys.argv = ["labctl", *json.loads(sys.argv[1])]
try:
    from labctl.cli.main import run
    run()
except SystemExit:
    pass
finally:
    with open(OUT, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def _imported(args: list[str], tmp_path: Path) -> set[str]:
    out = tmp_path / "modules.json"
    code = _PROBE.replace("OUT", repr(str(out)))
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(out.read_text()))


def test_help_imports_no_command_module_nor_heavy_stack(tmp_path: Path) -> None:
    modules = _imported(["--help"], tmp_path)
    assert "typer" in modules  # the probe did run the CLI
    assert not modules & NOT_FOR_HELP, sorted(modules & NOT_FOR_HELP)


def test_validate_imports_only_its_own_command(tmp_path: Path) -> None:
    modules = _imported(["validate", str(ROOT / "inventory.yaml")], tmp_path)
    assert "labctl.inventory.checks" in modules  # it did validate
    assert not modules & NOT_FOR_VALIDATE, sorted(modules & NOT_FOR_VALIDATE)


def test_each_command_loads_its_own_module(tmp_path: Path) -> None:
    modules = _imported(["power", "--help"], tmp_path)
    assert "labctl.cli.power_cmd" in modules
    assert not modules & (COMMAND_MODULES - {"labctl.cli.power_cmd"})


def _help(app: object, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result.output


def test_stand_ins_read_as_the_commands_themselves() -> None:
    """`--help` built from COMMANDS' one-line helps lists what the whole tree lists."""
    assert _help(main.build_app(lambda name: False)) == _help(main.build_app())


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([], None),
        (["--help"], None),
        (["--version"], None),
        (["validate", "x.yaml"], "validate"),
        (["-h", "power", "status"], "power"),
        (["--", "plan"], "plan"),
        (["nosuch"], None),
        (["inventory.yaml"], None),
    ],
)
def test_asked_finds_the_command_word(argv: list[str], command: str | None) -> None:
    assert main.asked(argv) == command


def test_bootstrap_loads_no_snmp_stack_before_a_switch_is_read_over_snmp() -> None:
    """Issue 28: every bootstrap imported pysnmp (about 0.2 s of a converged run's start,
    more on a loaded machine) through the calico layers, though only a switch whose
    ``bgp_status`` is ``snmp`` is read with it."""
    code = (
        "import sys, labctl.cli.bootstrap_cmd, labctl.layers, labctl.run;"
        "print(sorted(m for m in sys.modules if m.startswith('pysnmp')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout
