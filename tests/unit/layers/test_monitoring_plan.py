"""The monitoring layer's plans for the reference inventory, against their golden file,
and what the plans must never hold: a device credential, or a file with one readable
by anyone but the exporter's own user."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from labctl.engine.actions import PutFile, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.layers import LAYERS
from labctl.layers.monitoring import MonitoringLayer
from labctl.pki.facts import PkiFiles
from labctl.render.monitoring import units
from labctl.render.monitoring.paths import PLACED_ETCD_KEY, PLACED_KUBE_KEY
from tests.conftest import REFERENCE, assert_golden
from tests.unit.layers.test_pki_plan import _placeholder_store


def _ctx(tmp_path: Path, text: str | None = None) -> LayerContext:
    inventory_path = tmp_path / "inventory.yaml"
    if text is None:
        shutil.copy(REFERENCE, inventory_path)
    else:
        inventory_path.write_text(text)
    ctx = LayerContext(require_inventory(inventory_path), inventory_path, tmp_path / "state")
    return dataclasses.replace(ctx, facts=Facts.of(_placeholder_store(ctx)))


def test_monitoring_is_the_last_layer() -> None:
    assert [layer.name for layer in LAYERS][-2:] == ["ceph", "monitoring"]


def test_monitoring_plans_match_golden(tmp_path: Path) -> None:
    plans = [plan.as_dict() for plan in MonitoringLayer().plans(_ctx(tmp_path))]
    assert [plan["layer"] for plan in plans] == [
        "monitoring: node-exporter",
        "monitoring: prometheus",
        "monitoring: targets",
    ]
    assert_golden("plan-monitoring.json", json.dumps(plans, indent=2) + "\n")


def test_nothing_of_ceph_is_the_monitoring_layers_so_it_runs_beside_ceph(
    tmp_path: Path,
) -> None:
    # The managers' prometheus module is the ceph layer's step (test_ceph_plan.py): this
    # layer neither needs ceph nor runs a command through a monitor.
    assert "ceph" not in MonitoringLayer.needs
    text = json.dumps([p.as_dict() for p in MonitoringLayer().plans(_ctx(tmp_path))])
    assert "mgr module enable" not in text


def test_node_exporter_on_every_server_and_prometheus_on_the_control_plane(
    tmp_path: Path,
) -> None:
    actions = [
        a
        for plan in MonitoringLayer().plans(_ctx(tmp_path))
        for a in (s.action for s in plan.steps)
    ]
    units = {(a.host, a.path.rsplit("/", 1)[1]) for a in actions if isinstance(a, PutFile)}
    for node in ("fohn", "chequita", "wind"):
        assert (node, "labctl-node-exporter.service") in units
    assert ("fohn", "labctl-prometheus.service") in units
    assert ("wind", "labctl-prometheus.service") not in units


def test_device_credentials_only_in_their_exporters_own_files_and_never_in_the_plan(
    tmp_path: Path,
) -> None:
    ctx = _ctx(tmp_path)
    plans = list(MonitoringLayer().plans(ctx))
    text = json.dumps([p.as_dict() for p in plans])
    files = [a for p in plans for a in (s.action for s in p.steps) if isinstance(a, PutFile)]
    with_secrets = {a.path: a for a in files if a.fill is not None}
    assert set(with_secrets) == {
        "/etc/prometheus/labctl-snmp.yml",
        "/etc/prometheus/labctl-ipmi.yml",
    }
    # Each file is its exporter's own user's, 0600: not root's (the exporter runs as its
    # user, never root), and not readable by the other programs' users.
    owners = {
        "/etc/prometheus/labctl-snmp.yml": "labctl-snmp-exporter:labctl-snmp-exporter",
        "/etc/prometheus/labctl-ipmi.yml": "labctl-ipmi-exporter:labctl-ipmi-exporter",
    }
    for f in with_secrets.values():
        assert (f.mode, f.owner, f.secret) == (0o600, owners[f.path], True)
        assert b"<secret: environment variable LABCTL_" in f.content
    values = {
        ref: f"value-of-{ref.env}" for f in with_secrets.values() for ref in
        (u.ref for u in f.secrets)
    }  # fmt: skip
    ipmi = with_secrets["/etc/prometheus/labctl-ipmi.yml"]
    assert ipmi.fill is not None
    written = ipmi.fill.text(values).decode()
    assert "value-of-LABCTL_BMC_PASSWORD_FOHN" in written
    for value in values.values():
        assert value not in text  # the plan holds references only
    # A restart follows the credentials: their sealed digest joins its fingerprint.
    restart = next(a for p in plans for a in (s.action for s in p.steps) if isinstance(a, Run) and
                   "labctl-monitoring-restart" in a.argv and a.host == "fohn" and
                   "labctl-prometheus.service" in a.argv)  # fmt: skip
    assert {u.used_at for u in restart.secrets} >= {"servers.fohn.bmc.password"}


def test_running_on_the_operators_machine_is_refused_with_a_sentence(tmp_path: Path) -> None:
    text = REFERENCE.read_text().replace(
        "\ncluster:\n", "\ncluster:\n  monitoring: {operator: true}\n", 1
    )
    ctx = _ctx(tmp_path, text)
    with pytest.raises(LabctlError, match="operator's machine is not built"):
        list(MonitoringLayer().plans(ctx))


def test_the_simulated_bmcs_get_freeipmis_workaround_and_real_ones_do_not(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from labctl.platform import RealPlatform
    from labctl.sim.platform import SimPlatform

    def ipmi_yml(ctx: LayerContext) -> bytes:
        plans = MonitoringLayer().plans(ctx)
        files = [s.action for p in plans for s in p.steps if isinstance(s.action, PutFile)]
        return next(f.content for f in files if f.path.endswith("labctl-ipmi.yml"))

    ctx = _ctx(tmp_path)
    assert b"workaround_flags" not in ipmi_yml(replace(ctx, platform=RealPlatform()))
    simulated = ipmi_yml(replace(ctx, platform=SimPlatform()))
    assert simulated.count(b"workaround_flags:\n    - opensesspriv") == 3


def test_no_two_remembered_commands_on_a_node_share_an_argv(tmp_path: Path) -> None:
    """The journal keeps one fingerprint per command and node: two Runs with one argv
    and different triggers would each undo the other's, and no re-run would converge."""
    runs = [
        s.action
        for p in MonitoringLayer().plans(_ctx(tmp_path))
        for s in p.steps
        if isinstance(s.action, Run)
    ]
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_a_re_minted_prometheus_key_restarts_prometheus_and_nothing_else(
    tmp_path: Path,
) -> None:
    """Prometheus copies its identity's keys at start (``units.key_copies``): the pki
    layer re-minting them must restart it, or it pairs the new certificate with the old
    key's copy. Another node's certificate changing restarts nothing here."""
    ctx = _ctx(tmp_path)
    placed = ctx.fact(PkiFiles)

    def runs(facts: PkiFiles) -> dict[str, str]:
        c = dataclasses.replace(ctx, facts=Facts.of(facts))
        return {
            a.key: a.fingerprint
            for plan in MonitoringLayer().plans(c)
            for a in (s.action for s in plan.steps)
            if isinstance(a, Run)
        }

    def rotated(path: str) -> PkiFiles:
        return PkiFiles(
            tuple(
                (node, tuple(
                    dataclasses.replace(f, content=b"re-minted\n") if f.path == path else f
                    for f in files
                ))
                for node, files in placed.files
            )
        )  # fmt: skip

    before = runs(placed)
    for path in (PLACED_KUBE_KEY, PLACED_ETCD_KEY):
        after = runs(rotated(path))
        changed = [k for k in before if before[k] != after[k]]
        assert changed == [
            "run:fohn:sh -c 'systemctl restart \"$@\"' labctl-monitoring-restart "
            + " ".join(units.SERVER_UNITS)
        ], path
    assert runs(rotated("/etc/kubernetes/ssl/kubelet-wind.pem")) == before
