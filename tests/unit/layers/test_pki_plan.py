"""The pki layer's plans for the reference inventory, against their reviewed golden file.

The push plan is built from the fact ``PkiFiles``; here it is gathered from a
store that holds a placeholder for every file (its own name), so the plan's
hashes and sizes are the same on every run while the paths, modes and owners
are the real ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labctl.engine.facts import FactPending, Facts
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.layers.pki import PkiLayer
from labctl.pki.facts import PkiFiles
from labctl.pki.lab_pki import PkiSession
from labctl.pki.specs import SERVICE_ACCOUNT, plan_certificates
from tests.conftest import REFERENCE, assert_golden


def _placeholder_store(ctx: LayerContext) -> PkiFiles:
    """The fact ``PkiFiles`` as gathered from a store of placeholders."""
    session = PkiSession(ctx.inventory, ctx.base_dir)
    store = session.store
    store.ensure()
    specs = plan_certificates(session.input)
    names = [f"{spec.name}{end}" for spec in specs for end in (".pem", "-key.pem")]
    names += [f"{SERVICE_ACCOUNT}{suffix}" for suffix in (".key", ".pub", ".trust.pem")]
    for name in names:
        store.path(name).write_text(f"{name}\n")
    return PkiFiles.gather(ctx)


def test_pki_plans_match_golden(tmp_path: Path) -> None:
    inventory_path = tmp_path / "inventory.yaml"
    shutil.copy(REFERENCE, inventory_path)
    ctx = LayerContext(require_inventory(inventory_path), inventory_path, tmp_path / "state")
    ctx = LayerContext(
        ctx.inventory, inventory_path, ctx.state_dir, facts=Facts.of(_placeholder_store(ctx))
    )
    plans = [plan.as_dict() for plan in PkiLayer().plans(ctx)]
    assert [plan["layer"] for plan in plans] == ["pki: mint", "pki: push"]
    assert_golden("plan-pki.json", json.dumps(plans, indent=2) + "\n")


def test_pki_before_any_mint_plans_the_mint_and_says_the_push_waits_for_it(
    tmp_path: Path,
) -> None:
    inventory_path = tmp_path / "inventory.yaml"
    shutil.copy(REFERENCE, inventory_path)
    inventory = require_inventory(inventory_path)
    ctx = LayerContext(inventory, inventory_path, tmp_path / "state", dry_run=True)
    ctx.facts.gather([PkiFiles], ctx)  # an empty store: pending
    plans = PkiLayer().plans(ctx)
    assert next(plans).layer == "pki: mint"
    with pytest.raises(FactPending) as pending:
        next(plans)
    assert pending.value.plan == "pki: mint"
    assert "no CA in the PKI store yet" in pending.value.why


def test_a_server_added_since_the_mint_is_pending_and_the_others_are_not(tmp_path: Path) -> None:
    inventory_path = tmp_path / "inventory.yaml"
    shutil.copy(REFERENCE, inventory_path)
    ctx = LayerContext(require_inventory(inventory_path), inventory_path, tmp_path / "state")
    _placeholder_store(ctx)
    (tmp_path / "ssl" / "kubelet-wind.pem").unlink()  # as if wind came after the mint
    files = PkiFiles.gather(ctx)
    assert files.digest("fohn") and files.of("chequita")
    with pytest.raises(FactPending, match="wind: kubelet-wind is missing") as pending:
        files.of("wind")
    assert pending.value.plan == "pki: mint"
    plans = PkiLayer().plans(
        LayerContext(ctx.inventory, inventory_path, ctx.state_dir, facts=Facts.of(files))
    )
    assert next(plans).layer == "pki: mint"
    with pytest.raises(FactPending):
        next(plans)  # a dry run says the push waits for the mint; a real run fails so
