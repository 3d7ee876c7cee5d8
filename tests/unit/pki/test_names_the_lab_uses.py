"""Node certificates carry the names the lab publishes (issue 27 item 6).

``inventory export hosts`` writes ``fohn.lab.example.net`` for the hosts file or
DNS; a client that dials that name must find it in the node's certificates. Both
come from one rule (``inventory/naming.py``), so this test reads the hosts
export itself rather than spelling the name out.
"""

from __future__ import annotations

from labctl.inventory import require_inventory
from labctl.inventory.export import primary_address, to_hosts
from labctl.pki.lab_pki import pki_input
from labctl.pki.specs import plan_certificates
from tests.conftest import REFERENCE


def _published(text: str, address: str) -> str:
    """The FQDN the hosts export gives ``address`` (the first name on its line)."""
    for line in text.splitlines():
        if line.startswith(f"{address}\t"):
            return line.split("\t")[1].split()[0]
    raise AssertionError(f"{address} is not in the hosts export")


def test_every_server_certificate_carries_the_fqdn_the_hosts_export_publishes() -> None:
    inventory = require_inventory(REFERENCE)
    hosts = to_hosts(inventory)
    specs = plan_certificates(pki_input(inventory))
    for server in inventory.servers:
        address = primary_address(server, inventory)
        assert address is not None
        name = _published(hosts, address)
        assert name == f"{server.name}.{inventory.lab.domain}"
        owned = [s for s in specs if server.name in s.owner_nodes and not s.is_ca]
        serving = [s for s in owned if s.name.startswith(("etcd-server-", "etcd-peer-"))]
        assert serving, f"{server.name} has no etcd serving certificate to check"
        for spec in serving:
            assert name in spec.dns_names, f"{spec.name} lacks {name}: {spec.hosts}"


def test_the_fqdn_is_one_the_api_certificate_carries_for_control_planes() -> None:
    inventory = require_inventory(REFERENCE)
    api = next(s for s in plan_certificates(pki_input(inventory)) if s.name == "apiserver")
    for server in inventory.with_role("control-plane"):
        assert f"{server.name}.{inventory.lab.domain}" in api.dns_names
