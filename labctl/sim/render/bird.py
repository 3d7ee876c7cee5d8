"""BIRD 1.6 configuration per node, as calico-node's confd writes it (pure).

calico-node embeds BIRD 1.6 and renders ``bird.cfg`` from the Calico resources
(``render/calico.py``) with its confd templates: the same kernel, device and
direct protocols, the same filter names, one ``bgp_template`` and one protocol
per peer named ``Mesh_<ip>``, ``Node_<ip>`` (route reflectors) or
``Global_<ip>`` (switches). This module writes that configuration from the
inventory so the simulated lab's nodes run the real BIRD 1.6 standing in for
calico-node (docs/calico.md). Two differences, both forced by stock BIRD:
``krt_tunnel`` (Calico's fork only) is left out, and the keepalive and hold
times come from cluster.calico instead of BIRD's defaults.

A configuration is data first (``Block``: a header and its statements), then
text, so the golden files compare structure rather than a template's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from labctl.errors import RenderError
from labctl.inventory import topology
from labctl.inventory.model import Inventory, Server
from labctl.render.bgp_common import SecretFn, Written, announced, masking
from labctl.render.quoting import bird_string

CONFIG_PATH = "/etc/calico/confd/config/bird.cfg"
CONTROL_SOCKET = "/var/run/calico/bird.ctl"


@dataclass(frozen=True)
class Block:
    header: str
    body: tuple[Statement, ...]


Statement = str | Block


def one_statement(statement: str) -> str:
    """A statement on one line: a value with a line break would add statements (the
    refusal does not show it: it may hold a password)."""
    if not statement.isprintable():
        raise RenderError("bird.cfg: a statement would hold a line break or control character")
    return statement


def text(statements: list[Statement], indent: int = 0) -> str:
    lines: list[str] = []
    pad = "  " * indent
    for s in statements:
        if isinstance(s, Block):
            lines.append(f"{pad}{one_statement(s.header)} {{")
            inner = text(list(s.body), indent + 1)
            if inner:
                lines.append(inner.rstrip("\n"))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{one_statement(s)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _filters(inventory: Inventory) -> list[Statement]:
    pod = inventory.cluster.kubernetes.pod_cidr
    accepts: list[Statement] = [
        f"if ( net ~ {a.cidr} ) then {{ accept; }}  # {a.what}" for a in announced(inventory)
    ]
    # Service and ingress prefixes are announced, never routed here: a blackhole for
    # the node's own public network in its kernel would cut it off.
    announced_only: list[Statement] = [
        f"if ( net ~ {a.cidr} ) then {{ reject; }}  # {a.what}: announced only"
        for a in announced(inventory)
        if a.cidr != pod
    ]
    return [
        Block("filter calico_export_to_bgp_peers", (*accepts, "reject;")),
        # calico-node sets krt_tunnel here for IP-in-IP; stock BIRD 1.6 rejects it.
        Block(
            "filter calico_kernel_programming",
            (*announced_only, f"if ( net ~ {pod} ) then {{ accept; }}", "accept;"),
        ),
    ]


def _statics(inventory: Inventory, server: Server) -> list[Statement]:
    routes: list[Statement] = []
    block = topology.node_block(inventory, server)
    if block is not None and inventory.cluster.calico.advertise.pod_blocks:
        routes.append(f"route {block} blackhole;  # this node's pod block")
    calico = inventory.cluster.calico
    if calico.advertise.service_cidr:
        routes.append(f"route {inventory.cluster.kubernetes.service_cidr} blackhole;  # services")
    for cidr, _ in topology.external_ranges(inventory):
        routes.append(f"route {cidr} blackhole;  # ingress addresses")
    return [Block("protocol static", tuple(routes))] if routes else []


def _template(inventory: Inventory) -> Block:
    calico = inventory.cluster.calico
    return Block(
        "template bgp bgp_template",
        (
            "debug { states };",
            'description "Connection to BGP peer";',
            f"local as {calico.asn};",
            "multihop;",
            "gateway recursive;",
            "import all;",
            "export filter calico_export_to_bgp_peers;",
            "add paths on;",
            "graceful restart;",
            # calico-node writes this from maxRestartTime: a peer that went silent
            # keeps its routes no longer than the hold time (a dead node's block goes).
            f"graceful restart time {calico.hold_time};",
            "connect delay time 1;",
            "connect retry time 2;",
            "error wait time 1,10;",
            f"keepalive time {calico.keepalive_time};",
            f"hold time {calico.hold_time};",
        ),
    )


def _ip_key(address: str) -> tuple[int, ...]:
    return tuple(int(p) for p in address.split("."))


# A password is a BIRD string; so is its printed stand-in.
PASSWORD = Written(
    value=partial(bird_string, "a BGP password"), stand_in=partial(bird_string, "a BGP password")
)


def _peers(inventory: Inventory, server: Server, secret: SecretFn) -> list[Statement]:
    calico = inventory.cluster.calico
    out: list[Statement] = []
    for s in topology.sessions(inventory, node=server.name):
        body: list[Statement] = [
            f"neighbor {s.peer_address} as {s.peer_asn};",
            f"source address {s.local_address};",
        ]
        if s.kind == "mesh" and _ip_key(s.peer_address) > _ip_key(s.local_address):
            # As calico-node does: the mesh is one-way, the higher address connects,
            # so a graceful restart is never cut short by a second connection.
            body.append("passive on;")
        if s.kind == "client":
            body += ["rr client;", f"rr cluster id {calico.route_reflector_cluster_id};"]
        ref = None
        if s.kind == "switch":
            ref = next((p.password for p in calico.peers if p.address == s.peer_address), None)
        elif calico.mesh_password is not None:
            ref = calico.mesh_password
        if ref is not None:
            body.append(f"password {secret(ref, PASSWORD)};")
        out.append(Block(f"protocol bgp {s.protocol} from bgp_template", tuple(body)))
    return out


def config(inventory: Inventory, server: Server, secret: SecretFn = masking) -> str:
    """``bird.cfg`` for ``server``; BGP passwords through ``secret`` (masked by default)."""
    address = topology.bgp_address(inventory, server)
    statements: list[Statement] = [
        f"# bird.cfg for {server.name}, written by labctl as calico-node's confd would",
        f"router id {address};",
        *_filters(inventory),
        Block(
            "protocol kernel",
            (
                "learn;",
                "persist;",
                "scan time 2;",
                "import all;",
                "export filter calico_kernel_programming;",
                "graceful restart;",
                "merge paths on;",
            ),
        ),
        Block("protocol device", ("debug { states };", "scan time 2;")),
        Block("protocol direct", ("debug { states };", 'interface -"cali*", -"kube-ipvs*", "*";')),
        *_statics(inventory, server),
        _template(inventory),
        *_peers(inventory, server, secret),
    ]
    return text(statements)
