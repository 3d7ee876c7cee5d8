"""The SNMP exporter's snmp.yml: one module per PDU and per BGP-reading switch.

snmp_exporter 0.21 (Debian 12) keeps a module's credentials inside the module, so
a module is a device: its profile's objects (what labctl knows of the PDU model,
``labctl/drivers/pdu_profiles.py``, or BGP4-MIB for a switch) and its SNMP user.
Secret values come only through ``resolve``, which the caller supplies (the layer
resolves the inventory's references and writes the file 0600 for the exporter's
user; tests and goldens pass a stand-in), so this module never reads a secret.

Metric names are the same across PDU models so one rule reads them all:
``pdu_outlet_state`` (per-outlet profiles), ``pdu_outlet_status`` (the DigiPower
status string, as a label), ``pdu_bank_current_deciamps``, ``pdu_bank_load_state``
(APC's own lowLoad 1 / normal 2 / nearOverload 3 / overload 4) and
``pdu_bank_threshold_deciamps`` (DigiPower's pdu01Threshold1; its unit unconfirmed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from labctl.inventory.model import Inventory, Pdu, SecretRef, Snmp
from labctl.render.monitoring.targets import bgp_switches


class Profile(Protocol):
    """What snmp.yml needs of a PDU profile (labctl.drivers.pdu_profiles.PduProfile)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def state_oid(self) -> str: ...


Resolve = Callable[[SecretRef], str]

BGP_PEER_STATE = "1.3.6.1.2.1.15.3.1.2"  # BGP4-MIB bgpPeerState, indexed by bgpPeerRemoteAddr
# Load objects per known profile: (metric, oid, help, index label or None for a scalar).
LOAD: dict[str, tuple[tuple[str, str, str, str | None], ...]] = {
    # PowerNet-MIB rPDULoadStatusTable: Load (tenths of amps) and LoadState, per bank/phase.
    "apc-rpdu": (
        (
            "pdu_bank_current_deciamps",
            "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2",
            "Load of a bank or phase in tenths of amps (rPDULoadStatusLoad).",
            "bank",
        ),
        (
            "pdu_bank_load_state",
            "1.3.6.1.4.1.318.1.1.12.2.3.1.1.3",
            "lowLoad 1, normal 2, nearOverload 3, overload 4 (rPDULoadStatusLoadState).",
            "bank",
        ),
    ),
    # DigiPower-PDU-MIB pdu01Value (current, tenths of amps as LibreNMS/Observium scale it)
    # and pdu01Threshold1 (read-write alarm threshold; unit assumed the same: unconfirmed).
    "digipower-swh": (
        (
            "pdu_bank_current_deciamps",
            "1.3.6.1.4.1.17420.1.2.9.1.11",
            "Current drawn by the PDU in tenths of amps (pdu01Value).",
            None,
        ),
        (
            "pdu_bank_threshold_deciamps",
            "1.3.6.1.4.1.17420.1.2.9.1.15",
            "The PDU's current alarm threshold (pdu01Threshold1).",
            None,
        ),
    ),
}


def _table(template: str) -> str | None:
    """The column OID of a per-outlet ``...{outlet}`` template (None: not a column)."""
    suffix = ".{outlet}"
    return template[: -len(suffix)].lstrip(".") if template.endswith(suffix) else None


def _metric(name: str, oid: str, help_: str, index: str | None, kind: str = "gauge") -> Any:
    metric: dict[str, Any] = {"name": name, "oid": oid, "type": kind, "help": help_}
    if index is not None:
        # snmp_exporter 0.21 reads a 4-octet index as InetAddressIPv4 (its generator's
        # name for an IpAddress); "IpAddr" passes its config check, then panics at scrape.
        index_type = "InetAddressIPv4" if index == "peer" else "gauge"
        metric["indexes"] = [{"labelname": index, "type": index_type}]
    return metric


def _auth(snmp: Snmp, resolve: Resolve) -> dict[str, Any]:
    if snmp.version == "2c":
        assert snmp.community is not None  # the schema requires it for 2c
        return {"version": 2, "auth": {"community": resolve(snmp.community)}}
    auth: dict[str, Any] = {"username": snmp.username, "security_level": "noAuthNoPriv"}
    if snmp.auth_key is not None:
        auth["security_level"] = "authNoPriv"
        auth["auth_protocol"] = snmp.auth_protocol.upper()
        auth["password"] = resolve(snmp.auth_key)
        if snmp.priv_key is not None:
            auth["security_level"] = "authPriv"
            auth["priv_protocol"] = snmp.priv_protocol.upper()
            auth["priv_password"] = resolve(snmp.priv_key)
    return {"version": 3, "auth": auth}


def _pdu_metrics(pdu: Pdu, profile: Profile) -> list[dict[str, Any]]:
    metrics = []
    column = _table(profile.state_oid)
    if profile.kind == "status-string":
        oid = profile.state_oid.lstrip(".").removesuffix(".0")
        help_ = "Every outlet's state as the PDU's status string (1 on, 0 off)."
        metrics.append(_metric("pdu_outlet_status", oid, help_, None, "DisplayString"))
    elif column is not None:
        help_ = f"Outlet state as profile {profile.name} reads it."
        metrics.append(_metric("pdu_outlet_state", column, help_, "outlet"))
    if pdu.custom_profile is None:
        metrics += [_metric(*load) for load in LOAD.get(profile.name, ())]
    return metrics


def _module(metrics: list[dict[str, Any]], snmp: Snmp, resolve: Resolve) -> dict[str, Any]:
    return {
        "walk": [m["oid"] for m in metrics],
        "metrics": metrics,
        **_auth(snmp, resolve),
        "retries": 2,
        "timeout": "5s",
    }


def snmp_config(
    inv: Inventory, profile_of: Callable[[Pdu], Profile], resolve: Resolve
) -> dict[str, Any]:
    """snmp.yml; ``profile_of`` gives a PDU's profile with its inventory overrides
    (the driver's ``profile_for``), ``resolve`` a secret's value."""
    modules: dict[str, Any] = {}
    for pdu in inv.pdus:
        modules[pdu.name] = _module(_pdu_metrics(pdu, profile_of(pdu)), pdu.snmp, resolve)
    for sw in bgp_switches(inv):
        assert sw.snmp is not None
        state = _metric(
            "bgp_peer_state",
            BGP_PEER_STATE,
            "BGP session state: idle 1 ... established 6 (BGP4-MIB bgpPeerState).",
            "peer",
        )
        modules[sw.name] = _module([state], sw.snmp, resolve)
    return modules  # 0.21 reads modules at the top level (0.23 moved them under modules:)
