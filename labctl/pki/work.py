"""The pki layer's local work: minting on the operator's machine, as a bootstrap step.

Declared by the pki layer (``PkiLayer.local_work``) under ``pki.mint``. It is a
thin step over ``PkiSession`` (``lab_pki.py``), which ``labctl pki`` uses too,
so minting is written in one place; the work lives here, as every other
layer's does in its package's ``work.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.pki.check import weak_seals
from labctl.pki.lab_pki import PkiSession

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext


class MintWork:
    """The pki layer's local step ``pki.mint``: mint what the inventory needs, here."""

    def apply(self, ctx: LayerContext) -> bool:
        report = PkiSession(ctx.inventory, ctx.base_dir).mint()
        return bool(report.minted or report.resealed)

    def observe(self, ctx: LayerContext) -> str | None:
        # What minting would do, read from the store (expiry, SANs, subject,
        # signer, how CA keys are sealed); no key is decrypted, so a dry run needs no
        # passphrase.
        session = PkiSession(ctx.inventory, ctx.base_dir)
        findings = session.findings() + weak_seals(session.input, session.store)
        if not findings:
            return None
        shown = "; ".join(f"{f.name}: {f.reason}" for f in findings[:4])
        more = f"; and {len(findings) - 4} more" if len(findings) > 4 else ""
        return f"would mint {len(findings)}: {shown}{more}"
