"""snmp.yml as the monitoring layer writes it: each PDU read with its driver's profile.

The PDU profiles (which OIDs a model's outlets answer on) are the power driver's
(``drivers/pdu_profiles.py``), with the inventory's overrides; the render
(``render/monitoring/snmp.py``) takes them as a function so it stays below the
drivers, and layers reach no driver: this one function joins the two. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from labctl.drivers.pdu_profiles import profile_for
from labctl.inventory.model import Inventory, SecretRef
from labctl.render.monitoring import dump, snmp_config


def snmp_yml(inv: Inventory, secret: Callable[[SecretRef], str]) -> str:
    """snmp.yml's text, each credential written by ``secret`` (its value or a stand-in)."""
    return dump(snmp_config(inv, lambda p: profile_for(p.profile, p.custom_profile), secret))
