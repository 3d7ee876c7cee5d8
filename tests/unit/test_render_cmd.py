"""`labctl render NODE [WHAT]`: every file a bootstrap would push, shown with no lab.

The listing of paths for a server and a switch of the reference inventory is a
golden file (paths, layers and modes, not contents: those have their own golden
tests per renderer). The files must be exactly the ``PutFile``s of the layers'
dry plans for that node, secrets never appear (real Ceph keys are minted into a
copy of the lab and looked for), and ``--out`` lays them out as the node's tree.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.ceph.keys import KeyStore
from labctl.cli.main import app
from labctl.engine.actions import PutFile
from labctl.engine.layer import LayerContext
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.layers import LAYERS
from labctl.render import ceph as ceph_render
from tests.conftest import REFERENCE, assert_golden
from tests.labctl_process import run_labctl

runner = CliRunner()
PASSPHRASE = "render-test-passphrase-0123"


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", PASSPHRASE)


def _render(*args: str) -> tuple[int, str, str]:
    """``labctl render`` of a copy of the reference lab in a folder of its own: what it
    shows depends on the lab's state beside the inventory (a PKI store, Ceph keys), and
    the checkout's may hold the demo's."""
    with tempfile.TemporaryDirectory() as lab:
        inventory = Path(lab) / "inventory.yaml"
        shutil.copy(REFERENCE, inventory)
        out = runner.invoke(app, ["render", "-i", str(inventory), *args])
    return out.exit_code, out.stdout, out.stderr


def _listing(node: str) -> list[dict[str, object]]:
    code, stdout, stderr = _render(node, "-o", "json")
    assert code == 0, stderr
    return list(json.loads(stdout)["files"])


@pytest.mark.parametrize("node", ["fohn", "kek-core"])
def test_render_lists_the_files_of_a_server_and_a_switch(node: str) -> None:
    lines = [f"{f['mode']} {f['layer']:<10} {f['path']}" for f in _listing(node)]
    assert_golden(f"render-{node}.txt", "\n".join(lines) + "\n")


def _dry_plan_paths(node: str) -> set[str]:
    """Every PutFile path of every layer's dry plan for ``node``, as the runner plans."""
    found: set[str] = set()
    with tempfile.TemporaryDirectory() as state:
        copy = Path(state) / "inventory.yaml"  # the lab's state beside it is this test's
        shutil.copy(REFERENCE, copy)
        inventory = require_inventory(copy)
        ctx = LayerContext(inventory, copy, Path(state) / ".labctl", dry_run=True)
        for layer in LAYERS:
            ctx.facts.gather(getattr(layer, "facts", ()), ctx)
            try:
                for plan in layer.plans(ctx):
                    found |= {
                        s.action.path
                        for s in plan.steps
                        if isinstance(s.action, PutFile) and s.action.host == node
                    }
                    ctx.facts.gather(plan.makes, ctx)
            except LabctlError:  # a layer a dry run cannot finish (pending facts among them)
                continue
    return found


@pytest.mark.parametrize("node", ["fohn", "chequita", "kek-core"])
def test_every_file_a_dry_plan_pushes_is_rendered(node: str) -> None:
    planned = _dry_plan_paths(node)
    assert planned, f"the layers plan no file for {node}: nothing to compare"
    rendered = {str(f["path"]) for f in _listing(node)}
    assert planned <= rendered, planned - rendered


def test_no_secret_value_is_rendered(tmp_path: Path) -> None:
    """Real Ceph keys in a copy of the lab, a planted passphrase: neither is printed."""
    lab = tmp_path / "lab"
    lab.mkdir()
    shutil.copy(REFERENCE, lab / "inventory.yaml")
    inventory = require_inventory(lab / "inventory.yaml")
    store = KeyStore.of(inventory, lab)
    store.ensure(ceph_render.entities(inventory))
    keys = store.load()
    assert keys
    out = runner.invoke(app, ["render", "-i", str(lab / "inventory.yaml"), "fohn"])
    assert out.exit_code == 0, out.stderr
    assert "/etc/ceph/ceph.client.admin.keyring" in out.stdout
    for value in [PASSPHRASE, *keys.values()]:
        assert value not in out.stdout and value not in out.stderr
    written = tmp_path / "out"
    written.mkdir()
    out = runner.invoke(
        app, ["render", "-i", str(lab / "inventory.yaml"), "fohn", "--out", str(written)]
    )
    assert out.exit_code == 0, out.stderr
    for path in written.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not any(value in text for value in [PASSPHRASE, *keys.values()]), path


def test_out_mirrors_the_node_filesystem(tmp_path: Path) -> None:
    code, _, stderr = _render("fohn", "--out", str(tmp_path))
    assert code == 0, stderr
    unit = tmp_path / "fohn" / "etc" / "systemd" / "system" / "etcd-member.service"
    assert "ExecStart" in unit.read_text()
    assert (tmp_path / "fohn" / "boot-service" / "ipxe").read_text().startswith("#!ipxe")
    listed = {str(f["path"]).lstrip("/") for f in _listing("fohn")}
    on_disk = {
        str(p.relative_to(tmp_path / "fohn")) for p in (tmp_path / "fohn").rglob("*") if p.is_file()
    }
    assert on_disk == listed


def test_what_filters_by_layer_or_glob() -> None:
    code, stdout, _ = _render("fohn", "etcd", "-o", "json")
    assert code == 0
    files = json.loads(stdout)["files"]
    assert files and {f["layer"] for f in files} == {"etcd"}
    code, stdout, _ = _render("fohn", "*.service", "-o", "json")
    assert code == 0
    paths = [f["path"] for f in json.loads(stdout)["files"]]
    assert paths and all(p.endswith(".service") for p in paths)


def test_an_unknown_node_is_a_sentence_with_close_matches() -> None:
    done = run_labctl("render", "-i", str(REFERENCE), "fonh")
    assert done.returncode == 2
    assert "fonh is no server or switch" in done.stderr and "did you mean fohn" in done.stderr


def test_out_to_a_missing_folder_is_refused(tmp_path: Path) -> None:
    done = run_labctl("render", "-i", str(REFERENCE), "fohn", "--out", str(tmp_path / "nope"))
    assert done.returncode == 2 and "no such folder" in done.stderr
    assert not (tmp_path / "nope").exists()
