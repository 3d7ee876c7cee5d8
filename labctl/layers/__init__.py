"""Layers: the bootstrap order, and the registry of layers built so far.

A layer turns the inventory into plans (pure) and may need local work first
(minting certificates). It yields its plans one at a time: the runner applies
each before asking for the next, so a later plan can be built from what an
earlier one produced (certificates are minted, then pushed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from labctl.inventory.model import Inventory

if TYPE_CHECKING:  # the engine pulls in paramiko; commands that only read power need none of it
    from labctl.engine.executor import Handler, Observer
    from labctl.engine.plan import Plan

ORDER = ("power", "os", "pki", "etcd", "kubernetes", "calico", "ceph")


@dataclass(frozen=True)
class LayerContext:
    inventory: Inventory
    inventory_path: Path
    state_dir: Path
    dry_run: bool = False
    options: dict[str, str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.inventory_path.parent


class Layer(Protocol):
    name: str

    def plans(self, ctx: LayerContext) -> Iterator[Plan]: ...

    def handlers(self, ctx: LayerContext) -> dict[str, Handler]: ...

    def observers(self, ctx: LayerContext) -> dict[str, Observer]:
        """Dry-run reads for the actions only this layer can observe."""
        ...

    def close(self) -> None:
        """Release what the handlers opened (device sessions)."""
        ...


def built_layers() -> dict[str, Layer]:
    """The layers that exist in this version, by name."""
    from labctl.layers.pki import PkiLayer
    from labctl.layers.power_up import PowerLayer

    layers: dict[str, Layer] = {"power": PowerLayer(), "pki": PkiLayer()}
    return layers


def select(only: list[str] | None, start: str | None) -> list[str]:
    """Layer names to run, in bootstrap order; raises ValueError for unknown names."""
    for name in [*(only or []), *([start] if start else [])]:
        if name not in ORDER:
            raise ValueError(f"unknown layer '{name}'; layers are: {', '.join(ORDER)}")
    names = list(ORDER)
    if start:
        names = names[names.index(start) :]
    if only:
        names = [n for n in names if n in only]
    return names
