"""Count how often a run gathers its facts, and how often it decrypts the Ceph keys.

Usage: python benchmarks/bench_facts.py [--layers pki kubernetes ceph]

The real layers, the real runner and the real local work that makes the facts
(``pki.mint`` mints a PKI, ``ceph.keys`` seals the cephx keys) run against a
copy of the reference inventory in a temporary directory; every action on a
node or a BMC goes to an applier that only says yes (no device is reached), and
the other local work does nothing. Three runs: a first real run (it mints), a
second real run (nothing to mint), a dry run. For each: the calls to each
fact's gatherer, the decryptions of the sealed key file (``unseal``), the
scrypt derivations behind them, and the wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.ceph import keys as ceph_keys
from labctl.engine.actions import Action
from labctl.engine.appliers import Appliers, LocalApplier
from labctl.engine.executor import Options
from labctl.engine.layer import LayerContext
from labctl.engine.runner import run_layers
from labctl.inventory import require_inventory
from labctl.layers import LAYERS

ROOT = Path(__file__).resolve().parents[1]
REAL_WORK = {"pki.mint", "ceph.keys"}
COUNTS: Counter[str] = Counter()


class YesApplier:
    """Every action on a node or a BMC: done, or would change; nothing is reached."""

    kinds = ("put-file", "run", "wait-for", "check", "set-power", "set-boot-device")

    def apply(self, action: Action) -> bool:
        return True

    def observe(self, action: Action) -> str | None:
        return "would change"

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}

    def close(self) -> None:
        pass


class NoWork:
    def __init__(self, *subject: str) -> None:
        pass

    def apply(self, ctx: LayerContext) -> bool:
        return False

    def observe(self, ctx: LayerContext) -> str | None:
        return None


def _count(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        COUNTS[name] += 1
        return function(*args, **kwargs)

    return counted


def _count_gatherers(layers: Sequence[Any]) -> None:
    for layer in layers:
        for kind in getattr(layer, "facts", ()):
            gather = kind.gather.__func__
            if getattr(gather, "counted", False):
                continue

            def counted(cls: type, ctx: Any, _gather: Any = gather) -> Any:
                COUNTS[f"gather {cls.__name__}"] += 1
                return _gather(cls, ctx)

            counted.counted = True  # type: ignore[attr-defined]
            kind.gather = classmethod(counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=["pki", "kubernetes", "ceph"])
    args = parser.parse_args()
    os.environ.setdefault("LABCTL_CA_PASSPHRASE", "bench-facts-passphrase")
    layers = [layer for layer in LAYERS if layer.name in args.layers]
    _count_gatherers(layers)
    ceph_keys.unseal = _count("unseal (decrypt the Ceph keys)", ceph_keys.unseal)
    with tempfile.TemporaryDirectory(prefix="bench-facts-") as tmp:
        inventory_path = Path(tmp) / "inventory.yaml"
        shutil.copy(ROOT / "inventory.yaml", inventory_path)
        inventory = require_inventory(inventory_path)
        works: dict[str, Any] = {}
        for layer in layers:
            for name, make in getattr(layer, "local_work", dict)().items():
                works[name] = make if name in REAL_WORK else NoWork
        for label, dry_run in (("first run", False), ("second run", False), ("dry run", True)):
            COUNTS.clear()
            ceph_keys._aead_key.cache_clear()
            ctx = LayerContext(inventory, inventory_path, Path(tmp) / "state", dry_run=dry_run)
            appliers = Appliers([YesApplier(), LocalApplier(ctx, works)])
            start = time.perf_counter()
            outcomes = run_layers(layers, ctx, Options(dry_run=dry_run), appliers=appliers)
            took = time.perf_counter() - start
            COUNTS["scrypt derivations"] = ceph_keys._aead_key.cache_info().misses
            statuses = ", ".join(f"{o.name} {o.status}" for o in outcomes)
            print(f"{label} ({statuses}): {took:.2f} s")
            for name, count in sorted(COUNTS.items()):
                print(f"  {name}: {count}")


if __name__ == "__main__":
    main()
