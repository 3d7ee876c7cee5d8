"""What EOS and IOS switches say about their BGP sessions and routes, as labctl's data (pure).

Graceful power (``graceful.py``) waits on a switch's own words: which next hops its
installed BGP routes use (have they moved off a node?) and whether a node's session is
Established again, and since when (a session older than the power cut is the old one).
FRR says it in JSON (``status.py``); EOS says it in JSON too when a show command ends in
``| json`` (the same model eAPI returns); IOS only in text, whose columns these parsers
read. Each parser is tested on the shapes the vendors document (tests/peers/switch_cli/,
which says where each shape came from); nothing here talks to a switch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from labctl.errors import LabctlError

ESTABLISHED = "Established"
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")


@dataclass(frozen=True)
class Session:
    """A BGP session as a switch reports it: its state, and how long it has had it."""

    state: str
    up_for: float | None = None  # seconds in this state (None: the switch did not say)


def _default_vrf(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise LabctlError(f"{what}: not JSON ({exc})") from None
    vrf = data.get("vrfs", {}).get("default", {}) if isinstance(data, dict) else {}
    return vrf if isinstance(vrf, dict) else {}


def eos_sessions(summary_json: str, now: float) -> dict[str, Session]:
    """Peer address -> session, from EOS's ``show ip bgp summary | json``.

    ``upDownTime`` is the switch's clock (seconds since the epoch) at the last change of
    state; ``now`` is the same clock here (a lab's clocks agree: doctor checks them).
    """
    peers = _default_vrf(summary_json, "show ip bgp summary | json").get("peers", {})
    out = {}
    for address, peer in peers.items():
        if not isinstance(peer, dict):
            continue
        since = peer.get("upDownTime")
        up_for = max(0.0, now - float(since)) if isinstance(since, int | float) else None
        out[str(address)] = Session(str(peer.get("peerState", "?")), up_for)
    return out


def eos_routes(routes_json: str) -> dict[str, list[str]]:
    """Prefix -> next hops of the BGP routes EOS installed (``show ip route bgp | json``)."""
    routes = _default_vrf(routes_json, "show ip route bgp | json").get("routes", {})
    out = {}
    for prefix, route in routes.items():
        if not isinstance(route, dict) or "BGP" not in str(route.get("routeType", "")):
            continue
        vias = route.get("vias", [])
        out[str(prefix)] = [str(v["nexthopAddr"]) for v in vias if v.get("nexthopAddr")]
    return out


def _columns(lines: list[str], *names: str) -> tuple[int, list[int]] | None:
    """The header line's index and where each named column starts on it."""
    for i, line in enumerate(lines):
        if all(n in line for n in names):
            return i, [line.index(n) for n in names]
    return None


def ios_routes(show_ip_bgp: str) -> dict[str, list[str]]:
    """Prefix -> next hops of the paths IOS uses (``show ip bgp``: best ``>`` and multipath
    ``m``, valid ``*``, not a RIB failure ``r``).

    The table's columns are where its header puts them (IOS 15 and IOS XE differ by the
    width of the status codes): a line with nothing under ``Network`` is another path of
    the last network, and a network too long for its column has its next hop on the next
    line.
    """
    lines = show_ip_bgp.splitlines()
    header = _columns(lines, "Network", "Next Hop")
    if header is None:
        return {}
    start, (net_col, hop_col) = header
    out: dict[str, list[str]] = {}
    network: str | None = None
    codes = ""
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith(("Total number", "Processed")):
            continue
        head = line[:net_col]
        network_part = line[net_col:hop_col].strip()
        rest = line[hop_col:].split()
        if head.strip():
            codes = head
        if network_part:
            parts = network_part.split()
            if not _IPV4.match(parts[0]):
                continue
            network = parts[0]
            if len(parts) > 1:  # the network overflowed its column into the next hop's
                rest = parts[1:] + rest
        if network is None or not rest or not _IPV4.match(rest[0]):
            continue  # a wrapped network: its next hop is on the next line
        if "*" in codes and (">" in codes or "m" in codes) and "r" not in codes:
            out.setdefault(network, []).append(rest[0])
        codes = ""
    return out


_DURATION = re.compile(r"(\d+)([ywdhms])")
_UNIT = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def ios_duration(text: str) -> float | None:
    """IOS's Up/Down column: ``00:01:23``, ``1d02h``, ``2w3d``, ``1y2w``; ``never``: None."""
    if ":" in text:
        try:
            h, m, s = (int(p) for p in text.split(":"))
        except ValueError:
            return None
        return float(h * 3600 + m * 60 + s)
    found = _DURATION.findall(text)
    if not found or "".join(n + u for n, u in found) != text:
        return None
    return float(sum(int(n) * _UNIT[u] for n, u in found))


def ios_sessions(summary: str) -> dict[str, Session]:
    """Peer address -> session, from IOS's ``show ip bgp summary``.

    The last column is the number of prefixes received when the session is Established,
    and the state's name (``Idle``, ``Active``, ``Idle (Admin)``) when it is not; Up/Down
    is how long it has been in that state.
    """
    lines = summary.splitlines()
    header = _columns(lines, "Neighbor", "Up/Down")
    if header is None:
        return {}
    out = {}
    for line in lines[header[0] + 1 :]:
        parts = line.split()
        if len(parts) < 10 or not _IPV4.match(parts[0]):
            continue
        last = " ".join(parts[9:])
        state = ESTABLISHED if last.isdigit() else last
        out[parts[0]] = Session(state, ios_duration(parts[8]))
    return out


def cli_errors(output: str) -> list[str]:
    """The lines in which an EOS or IOS CLI refused what it was sent (``% Invalid input``,
    ``% Incomplete command``, ``% Ambiguous command``...)."""
    return [line.strip() for line in output.splitlines() if line.lstrip().startswith("% ")]
