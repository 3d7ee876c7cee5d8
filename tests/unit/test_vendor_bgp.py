"""EOS's JSON and IOS's text about BGP sessions and routes, read as graceful power reads them.

The inputs are the vendor-shaped fixtures in tests/peers/switch_cli/ (its README says
where each shape comes from); the expectations are written from the fixtures' meaning,
not from the parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.calico.graceful import still_via
from labctl.calico.vendor_bgp import (
    Session,
    cli_errors,
    eos_routes,
    eos_sessions,
    ios_duration,
    ios_routes,
    ios_sessions,
)
from labctl.errors import LabctlError

SHAPES = Path(__file__).resolve().parents[1] / "peers" / "switch_cli"
F, C, W = "31.31.164.220", "31.31.164.221", "31.31.164.222"
BLOCKS = ("10.188.0.0/26", "10.188.0.64/26", "10.188.0.128/26")


def shape(name: str) -> str:
    return (SHAPES / name).read_text()


def test_eos_sessions_with_how_long_each_has_been_in_its_state() -> None:
    now = 1796601600.25 + 60  # the fixture's upDownTime for fohn, plus a minute
    sessions = eos_sessions(shape("eos-show-ip-bgp-summary.json"), now)
    assert sessions == {
        F: Session("Established", 60.0),
        C: Session("Active", 59.0),
        W: Session("Established", 58.0),
    }
    assert eos_sessions("{}", now) == {}  # no BGP configured: no sessions
    with pytest.raises(LabctlError, match="not JSON"):
        eos_sessions("% Invalid input", now)


def test_eos_routes_are_each_prefix_s_ecmp_next_hops() -> None:
    before = eos_routes(shape("eos-show-ip-route-bgp.json"))
    assert before == {b: [F, C, W] for b in BLOCKS}
    assert still_via(before, W) == sorted(BLOCKS)
    after = eos_routes(shape("eos-show-ip-route-bgp-drained.json"))
    assert after == {b: [F, C] for b in BLOCKS}
    assert still_via(after, W) == []
    static = (
        '{"vrfs": {"default": {"routes": {"10.9.0.0/16": {"routeType": "static", "vias": []}}}}}'
    )
    assert eos_routes(static) == {}  # only BGP's routes


@pytest.mark.parametrize("name", ["ios-show-ip-bgp.txt", "iosxe-show-ip-bgp.txt"])
def test_ios_routes_take_best_and_multipath_paths_from_the_header_s_columns(name: str) -> None:
    routes = ios_routes(shape(name))
    assert {b: sorted(routes[b]) for b in BLOCKS} == {b: [F, C, W] for b in BLOCKS}
    assert "192.168.100.0/24" not in routes  # a RIB failure is not installed
    assert routes["172.16.200.128/25"] == ["31.31.164.210"]  # next hop on the wrapped line
    assert still_via(routes, W) == sorted(BLOCKS)


def test_ios_routes_after_the_drain_leave_wind_s_paths_valid_but_unused() -> None:
    routes = ios_routes(shape("ios-show-ip-bgp-drained.txt"))
    assert {b: sorted(routes[b]) for b in BLOCKS} == {b: [F, C] for b in BLOCKS}
    assert still_via(routes, W) == []
    assert ios_routes("% BGP not active\n") == {}


def test_ios_sessions_established_is_a_prefix_count_and_up_down_is_parsed() -> None:
    sessions = ios_sessions(shape("ios-show-ip-bgp-summary.txt"))
    assert sessions == {
        "31.31.164.210": Session("Established", 26 * 3600.0),
        F: Session("Established", 20 * 60 + 11.0),
        C: Session("Idle (Admin)", None),
        W: Session("Established", 7.0),
        "31.31.164.223": Session("Active", (14 + 3) * 86400.0),
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:07", 7.0), ("1d02h", 93600.0), ("2w3d", 17 * 86400.0), ("1y2w", 379 * 86400.0),
     ("never", None), ("1d02x", None)],
)  # fmt: skip
def test_ios_up_down_durations(text: str, seconds: float | None) -> None:
    assert ios_duration(text) == seconds


def test_cli_errors_are_the_percent_lines() -> None:
    out = "astrid(config-s-labctl)#\n% Invalid input detected at '^' marker.\nok\n"
    assert cli_errors(out) == ["% Invalid input detected at '^' marker."]
    assert cli_errors("router bgp 64514\n") == []
