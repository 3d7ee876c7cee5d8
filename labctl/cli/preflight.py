"""Bootstrap's version-skew preflight: refused before any layer runs, nothing changed.

A version change the inventory asks for that breaks one of the skew rules
(``labdiff/skew.py``: a skipped minor, a downgrade, a kubelet newer than the API
server, Ceph across more than two releases) would stop an upgrade halfway with a
cluster its own daemons refuse. So ``labctl bootstrap`` (and ``plan --layers``,
its dry run) asks what runs, for the components the chosen layers change, and
refuses with exit 2 and a sentence per rule naming ``file:line:col``, the field
and both versions. ``labctl plan`` shows the same problems in its diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labctl.engine.layer import Layer, LayerContext


def skew_preflight(layers: Sequence[Layer], ctx: LayerContext, inventory: Path) -> None:
    """Bootstrap's check before any layer runs: a version change the chosen layers would
    make that breaks a skew rule stops the run with exit 2, nothing changed."""
    from labctl.errors import UsageError
    from labctl.labdiff.diff import located, wanted_versions
    from labctl.labdiff.running import COMPONENT_LAYERS, observe
    from labctl.labdiff.skew import problems

    names = {layer.name for layer in layers}
    components = [c for c, layer in COMPONENT_LAYERS.items() if layer in names]
    if not components:
        return
    observed = observe(ctx.inventory, ctx.base_dir, ctx.state_dir, components, live=False)
    found = problems(wanted_versions(ctx.inventory), observed.running)
    found = [p for p in found if p.field.split(".")[1] in components]
    if not found:
        return
    text = inventory.read_text(encoding="utf-8")
    lines = [located(p, text, str(inventory)) for p in found]
    raise UsageError("refused before any layer ran, nothing was changed:\n" + "\n".join(lines))
