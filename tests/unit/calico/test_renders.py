"""The BGP fabric's renders for the reference lab, against reviewed golden files,
and the variants the reference does not use (route reflectors, attached peers,
passwords)."""

from __future__ import annotations

import json

import pytest
import yaml

from labctl.inventory import check_text, topology
from labctl.inventory.model import Inventory
from labctl.render import calico, switches
from labctl.render.bgp_common import masked, resolving
from labctl.sim.render import bird, calico_node, calico_standin
from tests.conftest import REFERENCE, assert_golden

REFERENCE_TEXT = REFERENCE.read_text()


def _inventory(text: str) -> Inventory:
    result = check_text(text, "inventory.yaml", REFERENCE)
    assert result.inventory is not None, [p.message for p in result.problems]
    assert not [p for p in result.problems if p.severity.value == "error"], result.problems
    return result.inventory


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return _inventory(REFERENCE_TEXT)


def _edit(*pairs: tuple[str, str]) -> Inventory:
    text = REFERENCE_TEXT
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return _inventory(text)


def test_calico_resources_match_golden(inventory: Inventory) -> None:
    assert_golden("calico-resources.yaml", calico.resources_yaml(inventory))


@pytest.mark.parametrize("node", ["fohn", "chequita", "wind"])
def test_bird_config_per_node_matches_golden(inventory: Inventory, node: str) -> None:
    assert_golden(f"bird-{node}.cfg", bird.config(inventory, inventory.server(node)))


@pytest.mark.parametrize(
    ("switch", "platform", "golden"),
    [
        ("kek-core", None, "switch-kek-core.frr"),
        ("astrid", None, "switch-astrid.eos"),
        ("astrid", "frr", "switch-astrid.frr"),
        ("tor", None, "switch-tor.ios"),
    ],
)
def test_switch_configs_match_golden(
    inventory: Inventory, switch: str, platform: str | None, golden: str
) -> None:
    sw = topology.switch(inventory, switch)
    assert sw is not None
    assert_golden(golden, switches.config(inventory, sw, platform=platform))


def test_blocks_follow_inventory_order(inventory: Inventory) -> None:
    assert topology.blocks(inventory) == {
        "fohn": "10.188.0.0/26",
        "chequita": "10.188.0.64/26",
        "wind": "10.188.0.128/26",
    }


def test_mesh_is_one_way_as_calico_node_makes_it(inventory: Inventory) -> None:
    fohn = bird.config(inventory, inventory.server("fohn"))
    wind = bird.config(inventory, inventory.server("wind"))
    # fohn (.220) waits for the higher addresses; wind (.222) connects to both.
    assert fohn.count("passive on;") == 2
    assert "passive on;" not in wind


def test_route_reflectors_replace_the_mesh() -> None:
    inv = _edit(
        ("node_to_node_mesh: true          # the write-up's iBGP full mesh",
         "node_to_node_mesh: false"),
        ("roles: [etcd, control-plane, worker, ceph-mon, ceph-osd]",
         "roles: [etcd, control-plane, worker, ceph-mon, ceph-osd, route-reflector]"),
    )  # fmt: skip
    kinds = {(s.node, s.peer, s.kind) for s in topology.sessions(inv) if s.kind != "switch"}
    assert kinds == {
        ("fohn", "chequita", "client"),
        ("fohn", "wind", "client"),
        ("chequita", "fohn", "reflector"),
        ("wind", "fohn", "reflector"),
    }
    fohn = bird.config(inv, inv.server("fohn"))
    assert "rr client;" in fohn and "rr cluster id 244.0.0.1;" in fohn
    assert "rr client;" not in bird.config(inv, inv.server("wind"))
    docs = calico.resources(inv)
    rr_node = next(d for d in docs if d["kind"] == "Node" and d["metadata"]["name"] == "fohn")
    assert rr_node["spec"]["bgp"]["routeReflectorClusterID"] == "244.0.0.1"
    assert rr_node["metadata"]["labels"] == {"route-reflector": "true"}
    assert any(d["metadata"]["name"] == "peer-with-route-reflectors" for d in docs)
    assert not next(d for d in docs if d["kind"] == "BGPConfiguration")["spec"][
        "nodeToNodeMeshEnabled"
    ]


def test_attached_peers_select_the_cabled_nodes() -> None:
    inv = _edit(
        ("{switch: astrid, address: 31.31.164.211, nodes: all}",
         "{switch: astrid, address: 31.31.164.211, nodes: attached}"),
    )  # fmt: skip
    assert [s.node for s in topology.switch_sessions(inv, "astrid")] == ["chequita", "wind"]
    peer = next(d for d in calico.bgp_peers(inv) if d["spec"]["peerIP"] == "31.31.164.211")
    assert peer["spec"]["nodeSelector"] == "kubernetes.io/hostname in {'chequita', 'wind'}"
    # A BGPPeer with a selector is the node's own to calico-node's confd (Node_<ip>);
    # one for every node has none and is global (Global_<ip>): the names confd writes
    # (tests/integration/test_calico_confd.py runs it).
    kek = next(d for d in calico.bgp_peers(inv) if d["spec"]["peerIP"] == "31.31.164.210")
    assert "nodeSelector" not in kek["spec"]
    wind = bird.config(inv, inv.server("wind"))
    assert "protocol bgp Node_31_31_164_211 from bgp_template {" in wind
    assert "protocol bgp Global_31_31_164_210 from bgp_template {" in wind
    astrid = topology.switch(inv, "astrid")
    assert astrid is not None
    frr = switches.config(inv, astrid, platform="frr")
    assert "neighbor 31.31.164.220 " not in frr and "neighbor 31.31.164.221 peer-group" in frr


def test_passwords_are_references_in_resources_and_masked_in_printed_configs() -> None:
    inv = _edit(
        ("{switch: kek-core, address: 31.31.164.210, nodes: all}",
         "{switch: kek-core, address: 31.31.164.210, nodes: all, "
         "password: {env: LABCTL_BGP_KEK}}"),
    )  # fmt: skip
    peer = calico.bgp_peers(inv)[0]
    assert peer["spec"]["password"] == {
        "secretKeyRef": {"name": "labctl-bgp", "key": "kek-core-31-31-164-210"}
    }
    kek = topology.switch(inv, "kek-core")
    assert kek is not None
    printed = switches.config(inv, kek)
    assert "neighbor CALICO password <secret from environment variable LABCTL_BGP_KEK>" in printed
    pushed = switches.config(inv, kek, secret=resolving(lambda ref: "s3cret"))
    assert "neighbor CALICO password s3cret" in pushed
    fohn = bird.config(inv, inv.server("fohn"), secret=resolving(lambda ref: "s3cret"))
    assert fohn.count('password "s3cret";') == 1  # the kek-core session only
    password = inv.cluster.calico.peers[0].password
    assert password is not None
    assert masked(password) not in bird.config(
        inv, inv.server("fohn"), secret=resolving(lambda ref: "x")
    )


@pytest.mark.parametrize("platform", ["frr", "eos"])
def test_a_password_equal_to_its_stand_in_is_checked_like_any_value(platform: str) -> None:
    """The file pushed is the render given the resolving secret function, whatever the
    value: one that reads like its printed stand-in (blanks in it) is refused as a CLI
    word, not pushed as if it were the stand-in."""
    from functools import partial

    from labctl.calico.fill import fill_for
    from labctl.errors import RenderError

    inv = _edit(
        ("{switch: kek-core, address: 31.31.164.210, nodes: all}",
         "{switch: kek-core, address: 31.31.164.210, nodes: all, "
         "password: {env: LABCTL_BGP_KEK}}"),
    )  # fmt: skip
    kek = topology.switch(inv, "kek-core")
    assert kek is not None
    text, fill = fill_for(inv, partial(switches.config, inv, kek, platform=platform))
    assert fill is not None and fill.masked().decode() == text
    (ref,) = (use.ref for use in fill.uses)
    assert masked(ref) in text  # the plan's text shows the stand-in
    assert b" password" in fill.text({ref: "one-word-s3cret"})
    with pytest.raises(RenderError, match="a BGP password must be one word") as refused:
        fill.text({ref: masked(ref)})
    assert masked(ref) not in str(refused.value)  # a refusal never shows the value


def test_a_switch_without_platform_is_refused_with_a_sentence(inventory: Inventory) -> None:
    inv = _edit(("    platform: ios\n", ""))
    tor = topology.switch(inv, "tor")
    assert tor is not None
    with pytest.raises(switches.NoPlatform, match="tor has no platform"):
        switches.config(inv, tor)


def test_resources_are_one_yaml_stream_of_calico_kinds(inventory: Inventory) -> None:
    docs = list(yaml.safe_load_all(calico.resources_yaml(inventory)))
    assert [d["kind"] for d in docs] == [
        "IPPool", "BGPConfiguration", "BGPPeer", "BGPPeer", "Node", "Node", "Node",
    ]  # fmt: skip
    assert all(d["apiVersion"] == "projectcalico.org/v3" for d in docs)


def test_node_settings_go_on_kubernetes_nodes_as_calicos_annotations(inventory: Inventory) -> None:
    patches = calico.kubernetes_nodes(inventory)
    assert_golden("calico-kubernetes-nodes.yaml", yaml.safe_dump_all(patches, sort_keys=False))
    assert {p["metadata"]["name"] for p in patches} == {"fohn", "chequita", "wind"}
    for patch in patches:
        assert set(patch["metadata"]) <= {"name", "annotations", "labels"}  # nothing else owned


def test_password_secret_is_base64_and_readable_by_calico_node_only(inventory: Inventory) -> None:
    assert calico.password_access(inventory, {}) == []
    secret, role, binding = calico.password_access(inventory, {"mesh": "s3cret"})
    assert secret["data"] == {"mesh": "czNjcmV0"}
    assert role["rules"][0]["resourceNames"] == ["labctl-bgp"]
    assert binding["subjects"][0]["name"] == "calico-node"


def test_stand_in_cni_configuration_uses_the_nodes_pod_block(inventory: Inventory) -> None:
    fohn = next(s for s in inventory.servers if s.name == "fohn")
    text = calico_node.cni_conflist(inventory, fohn)
    assert text is not None
    assert_golden("calico-cni-fohn.conflist", text)
    ranges = json.loads(text)["plugins"][0]["ipam"]["ranges"]
    assert ranges == [[{"subnet": topology.blocks(inventory)["fohn"]}]]


def test_stand_in_definitions_store_calicos_kinds_with_open_schemas(inventory: Inventory) -> None:
    defined = {d["spec"]["names"]["kind"] for d in calico_standin.definitions()}
    assert {r["kind"] for r in calico.calico_kinds(inventory)} <= defined
    assert_golden(
        "calico-stand-in-crds.yaml",
        yaml.safe_dump_all(calico_standin.definitions(), sort_keys=False),
    )


def test_a_switch_read_over_snmp_gets_agentx_where_frr_prints_it(inventory: Inventory) -> None:
    from dataclasses import replace

    kek = next(s for s in inventory.switches if s.name == "kek-core")
    plain = switches.config(inventory, kek).splitlines()
    snmp = switches.config(inventory, replace(kek, bgp_status="snmp")).splitlines()
    assert "agentx" not in plain
    assert snmp == [*plain[:2], "agentx", *plain[2:]]
    assert plain[1] == "hostname kek-core"
