"""The bootstrap layers, one module each, in the order ``labctl bootstrap`` runs them.

Each says what it ``needs`` (layer names, each earlier in ``LAYERS``): a run starts a
layer once those are done, independent ones at once (``engine/graph.py``), so the order
here is one order that respects the needs, the one ``--from`` and ``plan`` read.

A layer is a name and a pure ``plans(ctx)`` (``engine/layer.py``): the
inventory in, plans out. Adding a layer is writing ``layers/<name>.py``,
putting it in its place in ``LAYERS`` (a place not yet built holds a ``NotBuilt``),
a golden plan test and its docs; ``docs/architecture.md`` walks through it.
"""

from __future__ import annotations

from labctl.engine.layer import Layer
from labctl.layers.calico import CalicoLayer
from labctl.layers.calico_resources import CalicoResourcesLayer
from labctl.layers.ceph import CephLayer
from labctl.layers.etcd import EtcdLayer
from labctl.layers.kubernetes import KubernetesLayer
from labctl.layers.monitoring import MonitoringLayer
from labctl.layers.os import OsLayer
from labctl.layers.pki import PkiLayer
from labctl.layers.power import PowerLayer

LAYERS: tuple[Layer, ...] = (
    PowerLayer(),
    OsLayer(),
    PkiLayer(),
    EtcdLayer(),
    KubernetesLayer(),
    CalicoLayer(),
    CalicoResourcesLayer(),
    CephLayer(),
    MonitoringLayer(),
)
