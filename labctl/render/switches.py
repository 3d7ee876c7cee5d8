"""A switch's configuration in the dialect its ``platform`` names (pure).

``labctl switch config`` prints it, ``labctl switch diff`` compares it with the
running configuration, the calico layer pushes the FRR one to the simulated
switches. The simulated lab runs FRR on every switch whatever its platform,
so ``config(..., platform="frr")`` renders FRR for an EOS switch too.
"""

from __future__ import annotations

from labctl.inventory.model import Inventory, Switch
from labctl.render import switch_eos, switch_frr, switch_ios
from labctl.render.bgp_common import SecretFn, masking

RENDERERS = {"frr": switch_frr.config, "eos": switch_eos.config, "ios": switch_ios.config}


class NoPlatform(ValueError):
    """The switch names no platform, so labctl has no dialect to write it in."""


def config(
    inventory: Inventory, switch: Switch, secret: SecretFn = masking, platform: str | None = None
) -> str:
    dialect = platform or switch.platform
    if dialect is None:
        raise NoPlatform(
            f"switch {switch.name} has no platform (frr, eos or ios) in the inventory; "
            "labctl cannot tell which configuration to write"
        )
    return RENDERERS[dialect](inventory, switch, secret)
