"""The seam between the simulated and the real lab: one platform, chosen by the CLI.

Read from the code (with ``ast``): nothing under layers/, render/, drivers/ or engine/
reads the environment or imports ``labctl.sim``; the platform they are handed says
how the lab differs. An inventory value means one thing: ``runtime: host`` on a real
lab is units instead of static pods and nothing about a shared kernel, which only the
simulated platform brings. ``plan`` says the stand-ins once on a simulated lab (and in
``-o json``) and never on a real one.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from labctl.engine.actions import PutFile, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext, Platform
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.etcd.token import EtcdToken
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.kubernetes.upgrade import RunningNodes
from labctl.kubernetes.work import _addons
from labctl.layers.kubernetes import KubernetesLayer
from labctl.platform import NodeRuntime, RealPlatform
from labctl.sim.platform import SimPlatform
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl
from tests.unit.layers.test_pki_plan import _placeholder_store

LABCTL = Path(__file__).resolve().parents[2] / "labctl"
BELOW_THE_SEAM = ("layers", "render", "drivers", "engine")


def _offences(path: Path) -> list[str]:
    """What in ``path`` reads the environment or reaches the simulation."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append(f"{where}: reads os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if node.module == "os" and names & {"environ", "getenv", "environb"}:
                found.append(f"{where}: imports {', '.join(sorted(names))} from os")
            if node.module == "labctl.sim" or node.module.startswith("labctl.sim."):
                found.append(f"{where}: imports {node.module}")
            if node.module == "labctl" and "sim" in names:
                found.append(f"{where}: imports labctl.sim")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "labctl.sim" or alias.name.startswith("labctl.sim."):
                    found.append(f"{where}: imports {alias.name}")
        elif (  # importlib.import_module("labctl.sim...") and the like
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (node.value == "labctl.sim" or node.value.startswith("labctl.sim."))
        ):
            found.append(f"{where}: names {node.value}")
    return found


def test_nothing_below_the_seam_reads_the_environment_or_imports_the_simulation() -> None:
    files = [f for d in BELOW_THE_SEAM for f in sorted((LABCTL / d).rglob("*.py"))]
    assert len(files) > 40  # the folders are where this test thinks they are
    offences = [o for f in files for o in _offences(f)]
    assert offences == []


def test_the_rule_catches_what_it_is_about(tmp_path: Path) -> None:
    """The check itself fails on each way of breaking the rule (it cannot pass vacuously)."""
    bad = tmp_path / "probe.py"
    lines = [
        "import os",
        "from os import getenv",
        "import labctl.sim.lab",
        "from labctl.sim.platform import SimPlatform",
        "from labctl import sim",
        "x = os.environ.get('LABCTL_SSH_USER')",
        "importlib.import_module('labctl.sim.platform')",
    ]
    bad.write_text("\n".join(lines) + "\n")
    assert len(_offences(bad)) == 6


def _ctx(tmp_path: Path, platform: Platform, runtime: str) -> LayerContext:
    """The reference lab with cluster.kubernetes.runtime set to ``runtime``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "inventory.yaml"
    text = REFERENCE.read_text()
    anchor = "    pod_cidr: 10.188.0.0/16\n"
    assert anchor in text
    path.write_text(text.replace(anchor, f"{anchor}    runtime: {runtime}\n", 1))
    ctx = LayerContext(require_inventory(path), path, tmp_path / "state", platform=platform)
    # The layer plans from facts (engine/facts.py): a store with every file it places.
    return dataclasses.replace(
        ctx,
        facts=Facts.of(
            _placeholder_store(ctx),
            EtcdToken("sthlm-etcd"),
            EtcdChanges(),
            EtcdJoined(),
            EtcdVersions(),
            RunningNodes(),
        ),
    )


# What a shared kernel forces on the kubelet, containerd and kube-proxy.
SHARED_KERNEL = (
    b"cgroupDriver: cgroupfs",
    b"failSwapOn: false",
    b"unshare --mount",
    b"labctl-containerd",
)


def _written(ctx: LayerContext) -> bytes:
    plans = list(KubernetesLayer().plans(ctx))
    nodes = next(p for p in plans if p.layer == "kubernetes: nodes")
    files = [s.action for s in nodes.steps if isinstance(s.action, PutFile)]
    return b"\n".join(f.path.encode() + b"\n" + f.content for f in files)


def _conntrack(ctx: LayerContext) -> list[object]:
    return [d for d in _addons(ctx) if "maxPerCore" in json.dumps(d)]


def test_runtime_host_on_a_real_lab_is_units_and_nothing_of_a_shared_kernel(
    tmp_path: Path,
) -> None:
    """On main the inventory's `runtime: host` switched on the simulation's kubelet."""
    ctx = _ctx(tmp_path, RealPlatform(), "host")
    written = _written(ctx)
    assert b"/etc/systemd/system/kube-apiserver.service" in written  # units: what host means
    for setting in SHARED_KERNEL:
        assert setting not in written, setting
    assert b"cgroupDriver: systemd" in written
    assert _conntrack(ctx) == []


def test_the_simulated_platform_still_brings_the_shared_kernels_settings(
    tmp_path: Path,
) -> None:
    for runtime in ("host", "static-pods"):
        ctx = _ctx(tmp_path / runtime, SimPlatform(kube=runtime), "static-pods")
        written = _written(ctx)
        for setting in SHARED_KERNEL:
            assert setting in written, (runtime, setting)
        assert len(_conntrack(ctx)) == 1


SIM_ENV = {"LABCTL_ETCD_RUNTIME": "host", "LABCTL_SWITCH_PLATFORM": "frr"}


@pytest.mark.parametrize("output", ["text", "json"])
def test_a_simulated_plan_says_its_stand_ins_once_and_a_real_one_never(
    tmp_path: Path, output: str
) -> None:
    work = tmp_path / "lab"
    work.mkdir()
    (work / "inventory.yaml").write_text(REFERENCE.read_text())
    args = ("plan", "pki", "--state-dir", str(work / ".labctl"), "-o", output)
    sim = run_labctl(*args, cwd=work, env=SIM_ENV, timeout=60)
    real = run_labctl(*args, cwd=work, timeout=60)
    assert sim.returncode == real.returncode == 0, sim.stderr + real.stderr
    want = list(SimPlatform(etcd="host", switches="frr").differences())
    assert len(want) == 4  # the shared kernel, etcd, the switches, the BMCs
    if output == "json":
        assert json.loads(sim.stdout)["stand_ins"] == want
        assert "stand_ins" not in json.loads(real.stdout)
    else:
        said = [line for line in sim.stderr.splitlines() if line.startswith("stand-in: ")]
        assert said == [f"stand-in: {line}" for line in want]
    for text in (real.stdout, real.stderr):
        assert "stand-in" not in text and "simulat" not in text.lower()


def test_the_real_platform_hands_over_no_stand_in_for_the_reference_lab(tmp_path: Path) -> None:
    """Where the simulated lab has what a real one lacks (BIRD, stand-in definitions,
    imported images, a shared kernel's kubelet), the real platform returns nothing."""
    ctx = _ctx(tmp_path, RealPlatform(), "static-pods")
    inventory = ctx.inventory
    for server in inventory.servers:
        assert list(ctx.platform.node_bgp(ctx, server)) == []
        assert list(ctx.platform.image_imports(ctx, server)) == []
    assert ctx.platform.calico_kinds(inventory) == []
    assert ctx.platform.node_bgp_query() is None
    for runtime in ("static-pods", "host"):
        assert ctx.platform.node_runtime(inventory, runtime) == NodeRuntime()


def test_the_simulated_platform_hands_over_its_stand_ins(tmp_path: Path) -> None:
    """The same calls on the simulated platform give BIRD's files and unit on every
    node with a pod block, the stand-in definitions, and the images for the pods runtime."""
    sim = SimPlatform(calico_bird="/usr/sbin/bird", kube="pods", kube_binaries="/c/{version}/bin")
    ctx = _ctx(tmp_path, sim, "static-pods")
    inventory = ctx.inventory
    fohn = inventory.server("fohn")
    paths = [a.path for a in sim.node_bgp(ctx, fohn) if isinstance(a, PutFile)]
    assert paths == [
        "/etc/calico/confd/config/bird.cfg",
        "/etc/systemd/system/calico-bird.service",
        "/etc/cni/net.d/10-labctl-stand-in.conflist",
    ]
    assert sim.node_bgp_query() == ("/usr/sbin/birdc", "-s", "/var/run/calico/bird.ctl",
                                    "show", "protocols")  # fmt: skip
    assert {d["spec"]["names"]["kind"] for d in sim.calico_kinds(inventory)} >= {"IPPool"}
    (imports,) = sim.image_imports(ctx, fohn)
    assert isinstance(imports, Run)
    assert "/c/v1.36.3/images" in imports.argv
    assert sim.node_runtime(inventory, "pods").kubelet_settings["failSwapOn"] is False
