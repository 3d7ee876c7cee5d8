"""The ceph layer's plans and renders for the reference inventory, against reviewed goldens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.ceph.keys import CephKeys, KeyStore, cephx_key
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.layers.ceph import CephLayer
from labctl.render import ceph as render
from tests.conftest import REFERENCE, assert_golden


@pytest.fixture
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def fixed_keys(inventory: Inventory) -> dict[str, str]:
    """Keys that do not change between runs, so the goldens' hashes do not either."""
    return {
        e: cephx_key(bytes([i]) * 16, 1_700_000_000)
        for i, e in enumerate(render.entities(inventory))
    }


@pytest.fixture
def lab(tmp_path: Path) -> LayerContext:
    inventory = require_inventory(REFERENCE)
    keys = CephKeys(tuple(sorted(fixed_keys(inventory).items())))
    return LayerContext(inventory, REFERENCE, tmp_path / "state", facts=Facts.of(keys))


def test_ceph_plans_match_golden(lab: LayerContext) -> None:
    plans = [plan.as_dict() for plan in CephLayer().plans(lab)]
    assert [p["layer"] for p in plans] == [
        "ceph: keys",
        "ceph: monitors",
        "ceph: quorum",
        "ceph: managers",
        "ceph: osds",
        "ceph: pools",
        "ceph: metadata servers",
        "ceph: health",
    ]
    assert_golden("plan-ceph.json", json.dumps(plans, indent=2) + "\n")


def test_ceph_conf_matches_golden(inventory: Inventory) -> None:
    assert_golden("ceph.conf", render.conf_text(inventory))


@pytest.mark.parametrize("runtime", ["container", "host"])
def test_units_match_golden(inventory: Inventory, runtime: str) -> None:
    fohn = inventory.server("fohn")
    osd = render.osds(inventory)[0]
    assert_golden(
        f"ceph-mon-fohn-{runtime}.service", render.mon_files(inventory, fohn, runtime).unit
    )
    assert_golden(
        f"ceph-osd-0-{runtime}.service", render.osd_files(inventory, fohn, osd, runtime).unit
    )


def test_runtimes_differ_only_in_how_the_daemon_starts(inventory: Inventory) -> None:
    fohn = inventory.server("fohn")
    host = render.mgr_files(inventory, fohn, "host").unit.splitlines()
    container = render.mgr_files(inventory, fohn, "container").unit.splitlines()
    assert {line.split("=")[0] for line in set(host) ^ set(container)} == {
        "ExecStartPre",
        "ExecStart",
        "ExecStop",
    }


def test_osds_are_fixed_by_the_inventory(inventory: Inventory) -> None:
    osds = render.osds(inventory)
    assert len(osds) == 16  # the write-up's `ceph -s`: 16 osds
    assert [(o.id, o.server, o.device) for o in osds[6:8]] == [
        (6, "fohn", "/dev/sdh"),
        (7, "chequita", "/dev/sdb"),
    ]
    assert "/dev/sdh" not in {o.device for o in osds if o.server == "wind"}  # role none
    assert len({o.uuid for o in osds}) == 16
    assert render.osds(inventory) == osds  # the same every time


def test_keyrings_and_keys(inventory: Inventory, tmp_path: Path) -> None:
    keys = fixed_keys(inventory)
    assert_golden("ceph-mon-bootstrap.keyring", render.mon_keyring(inventory, keys))
    # A key decodes as Ceph's: type 1 (AES), 16 bytes of secret.
    import base64
    import struct

    raw = base64.b64decode(keys["client.admin"])
    assert struct.unpack("<HIIH", raw[:12]) == (1, 1_700_000_000, 0, 16) and len(raw) == 28


def test_keys_are_sealed_and_never_replaced(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl.errors import SecretError

    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", "first-passphrase")
    store = KeyStore.of(inventory, tmp_path)
    minted = store.ensure(render.entities(inventory))
    assert minted == render.entities(inventory)
    keys = store.load()
    assert store.path.stat().st_mode & 0o777 == 0o600
    sealed = store.path.read_text()
    assert all(key not in sealed for key in keys.values())  # encrypted at rest
    assert store.ensure(render.entities(inventory)) == []  # nothing new on a re-run
    assert store.load() == keys
    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", "wrong-passphrase")
    with pytest.raises(SecretError, match="wrong passphrase") as raised:
        KeyStore.of(inventory, tmp_path).load()
    assert "wrong" not in str(raised.value).replace("wrong passphrase", "")


def test_the_ceph_keys_refuse_a_passphrase_shorter_than_12_characters(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl.errors import SecretError

    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", "eleven-char")
    with pytest.raises(SecretError, match="shorter than 12 characters") as raised:
        KeyStore.of(inventory, tmp_path)
    assert "eleven-char" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_the_keys_fact_is_decrypted_from_the_sealed_file_once_minted(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl.engine.facts import FactPending

    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", "golden-passphrase")
    path = tmp_path / "inventory.yaml"
    path.write_text(REFERENCE.read_text())
    ctx = LayerContext(require_inventory(path), path, tmp_path / "state", dry_run=True)
    with pytest.raises(FactPending) as pending:
        CephKeys.gather(ctx)  # nothing minted yet
    assert pending.value.plan == "ceph: keys"
    ctx.facts.gather([CephKeys], ctx)
    plans = CephLayer().plans(ctx)
    assert next(plans).layer == "ceph: keys"
    with pytest.raises(FactPending):
        next(plans)  # the runner says the rest waits for ceph: keys
    KeyStore.of(ctx.inventory, tmp_path).save(fixed_keys(ctx.inventory))
    gathered = CephKeys.gather(ctx)
    assert gathered.as_dict() == fixed_keys(ctx.inventory)
    assert not any(key in repr(gathered) for key in gathered.as_dict().values())  # never printed


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_run_decrypts_the_ceph_keys_once_for_the_mint_step_and_once_for_the_fact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    """Through the real runner and the real ``ceph.keys`` work, keys minted already: the
    step opens the sealed file once (it used to once per entity in a dry run) and the
    layer's fact is gathered once (it used to be before the first plan and again after).
    A real run's planning ahead (``engine/runner.py``) reads it once more, into its
    scratch board, before the keys plan has run: the derived key is cached, so that
    opening costs a file read and an AES-GCM decryption (well under a millisecond)."""
    from collections.abc import Iterator

    from labctl.ceph import keys as ceph_keys
    from labctl.ceph.work import KeysWork
    from labctl.engine.appliers import Appliers, LocalApplier
    from labctl.engine.executor import Options
    from labctl.engine.plan import Plan
    from labctl.engine.runner import run_layers

    class KeysThenFirstPlan:
        """The ceph layer up to building the plan after the keys (which reads the fact);
        that plan is not applied: it reaches the nodes."""

        name = "ceph"
        facts = CephLayer.facts

        def plans(self, ctx: LayerContext) -> Iterator[Plan]:
            plans = CephLayer().plans(ctx)
            yield next(plans)
            next(plans)

    monkeypatch.setenv("LABCTL_CA_PASSPHRASE", "golden-passphrase")
    path = tmp_path / "inventory.yaml"
    path.write_text(REFERENCE.read_text())
    inventory = require_inventory(path)
    KeyStore.of(inventory, tmp_path).save(fixed_keys(inventory))
    unsealed: list[int] = []
    real_unseal = ceph_keys.unseal

    def counting_unseal(data: bytes, passphrase: bytes) -> dict[str, str]:
        unsealed.append(1)
        return real_unseal(data, passphrase)

    monkeypatch.setattr(ceph_keys, "unseal", counting_unseal)
    ctx = LayerContext(inventory, path, tmp_path / "state", dry_run=dry_run)
    appliers = Appliers([LocalApplier(ctx, {"ceph.keys": KeysWork})])
    (outcome,) = run_layers([KeysThenFirstPlan()], ctx, Options(dry_run=dry_run), appliers=appliers)
    assert [r.as_dict()["layer"] for r in outcome.reports] == ["ceph: keys"]
    assert len(unsealed) == (2 if dry_run else 3)


def test_require_osd_release_follows_every_osd_up_and_precedes_the_pools(
    lab: LayerContext,
) -> None:
    """After a major upgrade Ceph wants ``ceph osd require-osd-release`` once every OSD
    runs the new release: the pools plan asks it right after all OSDs are up and in (the
    OSDs' roll is behind), before any pool, MDS or the health wait; and again when the
    version or any OSD's unit changes, so an upgrade's roll is followed by it."""
    from labctl.engine.actions import Run
    from labctl.layers import ceph as layer

    plans = {p.layer: p for p in CephLayer().plans(lab)}
    pools = [s.action for s in plans["ceph: pools"].steps if isinstance(s.action, Run)]
    names = [a.argv[3] for a in pools]
    assert names[:3] == ["labctl-ceph-osds-in", "labctl-ceph-osd-release", "labctl-ceph-pools"]
    release = pools[1]
    assert release.argv[2] == layer.OSD_RELEASE
    assert "require-osd-release" in layer.OSD_RELEASE
    before = release.fingerprint

    line = "    version: 16.2.15                 # invented: Pacific, what Debian 12 packages\n"
    text = REFERENCE.read_text()
    assert line in text
    path = lab.state_dir.parent / "reef.yaml"
    path.write_text(text.replace(line, "    version: 18.2.7\n"))
    reef = LayerContext(require_inventory(path), path, lab.state_dir, facts=lab.facts)
    after = [s.action for s in {p.layer: p for p in CephLayer().plans(reef)}["ceph: pools"].steps]
    again = [a for a in after if isinstance(a, Run) and a.argv[3] == "labctl-ceph-osd-release"]
    assert again[0].fingerprint != before


def test_the_ceph_layer_turns_the_managers_prometheus_module_on_once_they_run(
    lab: LayerContext,
) -> None:
    # Here and not in the monitoring layer, which then needs nothing of Ceph's and runs
    # beside it: the step sits in the managers' plan, after each manager's wait for its
    # unit, before any OSD, on the first monitor, its argv the one the monitoring layer
    # ran (a lab whose journal holds it does not run it again).
    from labctl.engine.actions import Run, WaitFor

    plans = {plan.layer: plan for plan in CephLayer().plans(lab)}
    managers = plans["ceph: managers"]
    module = [
        (s, s.action) for s in managers.steps
        if isinstance(s.action, Run) and "labctl-ceph-mgr-prometheus" in s.action.argv
    ]  # fmt: skip
    assert len(module) == 1
    step, run = module[0]
    assert step.target == render.mons(lab.inventory)[0].name
    assert run.argv[2] == 'exec "$@" mgr module enable prometheus --force'
    assert run.what == "ceph mgr module enable prometheus (the managers serve :9283)"
    waits = {s.id: s.target for s in managers.steps if isinstance(s.action, WaitFor)}
    assert set(step.after) == set(waits)
    assert sorted(waits.values()) == sorted(s.name for s in render.managers(lab.inventory))
    # Only there: not in a later plan of this layer (the monitoring layer's plans are
    # tests/unit/layers/test_monitoring_plan.py's).
    assert list(plans).index("ceph: managers") < list(plans).index("ceph: osds")
    others = [p for name, p in plans.items() if name != "ceph: managers"]
    assert not any("labctl-ceph-mgr-prometheus" in json.dumps(p.as_dict()) for p in others)


def test_the_module_step_follows_whether_prometheus_scrapes_the_managers(
    inventory: Inventory,
) -> None:
    import dataclasses

    from labctl.layers.ceph import scraped

    assert scraped(inventory)
    no_ceph = dataclasses.replace(
        inventory, cluster=dataclasses.replace(inventory.cluster, ceph=None)
    )
    assert not scraped(no_ceph)
