"""An etcd member's unit and environment, from the inventory.

Every member of the ``etcd`` role gets the same two files: ``/etc/etcd/etcd.env``
(every setting, as etcd's own ``ETCD_*`` variables: name, data directory, client
and peer URLs on the member's address, mutual TLS with the certificates the pki
layer pushed, the initial cluster and the cluster's token, handed in: a new one per
formation, kept on the operator's machine by ``etcd/token.py``) and
``/etc/systemd/system/etcd-member.service``, whose one runtime-dependent line is
``ExecStart``: the host's ``/usr/bin/etcd``, or the etcd image under docker
(Flatcar) or podman (Fedora CoreOS), which ship no etcd binary. On the host runtime
at another version than the default (the one the OS's package is taken to be), the
unit runs labctl's build of that version from ``/opt/labctl/etcd/vX.Y.Z/``, which the
layer puts there before any member restarts (``etcd/binaries.py``).

The ``ETCD_INITIAL_*`` settings are read only when a member first starts on an
empty data directory, so they take no part in deciding a restart: adding a
member to the inventory rewrites every member's file but restarts none. A
member that joins a running cluster starts with ``existing`` and the cluster's
membership as it was when labctl added it (``etcd/membership.py`` records it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol

from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory, Server, default
from labctl.pki.placement import ETCD_DIR
from labctl.render.quoting import absolute_path
from labctl.render.systemd import Unit, env_text, exec_command, unit_text


class EtcdRuntimeSource(Protocol):
    """What says how etcd members run on a lab: its platform (``engine/layer.py``'s
    ``Platform``; only this one question is asked here, so render needs no engine)."""

    def etcd_runtime(self, inventory: Inventory) -> str: ...


UNIT_NAME = "etcd-member.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
ENV_PATH = "/etc/etcd/etcd.env"
IMAGE = "quay.io/coreos/etcd"
CONTAINER = "etcd-member"
RUNTIMES = ("container", "host")
# The host runtime: the OS's etcd at the default version, else labctl's build of the
# inventory's version in a folder of its own (a package owns /usr/bin/etcd).
HOST_ETCD = "/usr/bin/etcd"
HOST_BUILDS = "/opt/labctl/etcd"
INITIAL_PREFIX = "ETCD_INITIAL_"  # read by etcd only on an empty data directory


@dataclass(frozen=True)
class MemberFiles:
    """What one member's node holds, as text (the hashes decide restarts)."""

    server: str
    env: str
    unit: str

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.env + self.unit).encode()).hexdigest()

    @property
    def restart_digest(self) -> str:
        """Changes when a running member must restart: not for its start-up-only lines."""
        kept = [line for line in self.env.splitlines() if not line.startswith(INITIAL_PREFIX)]
        return hashlib.sha256(("\n".join(kept) + self.unit).encode()).hexdigest()


def runtime(inventory: Inventory, override: str | None = None) -> str:
    """How members run: ``override`` (the platform's answer) or cluster.etcd.runtime."""
    return override or inventory.cluster.etcd.runtime


def platform_runtime(inventory: Inventory, platform: EtcdRuntimeSource) -> str:
    """How members run on this platform: its answer, else cluster.etcd.runtime.

    The etcd layer, its local work and a restore all ask this one question.
    """
    return runtime(inventory, platform.etcd_runtime(inventory))


def members(inventory: Inventory) -> list[Server]:
    return inventory.with_role("etcd")


def address(inventory: Inventory, server: Server) -> str:
    """The address a member listens and advertises on (cluster.etcd.network, or the
    one labctl reaches the server on)."""
    network = inventory.cluster.etcd.network
    if network is not None:
        found = server.addresses(network)
        if found:
            return found[0].address
    reached = primary_address(server, inventory)
    if reached is None:  # LAB056 refuses such an inventory; this says why if one slips by
        raise ValueError(f"{server.name} has no address etcd could listen on")
    return reached


def client_url(inventory: Inventory, server: Server) -> str:
    return f"https://{address(inventory, server)}:{inventory.cluster.etcd.client_port}"


def peer_url(inventory: Inventory, server: Server) -> str:
    return f"https://{address(inventory, server)}:{inventory.cluster.etcd.peer_port}"


def initial_cluster(inventory: Inventory) -> str:
    return ",".join(f"{s.name}={peer_url(inventory, s)}" for s in members(inventory))


def data_dir(inventory: Inventory) -> str:
    """cluster.etcd.data_dir, refused unless absolute and normalised: it is handed to
    mkdir, mv and chmod on the node, where '-rf' would be an option."""
    return absolute_path("cluster.etcd.data_dir", inventory.cluster.etcd.data_dir)


def image(inventory: Inventory) -> str:
    etcd = inventory.cluster.etcd
    return etcd.image or f"{IMAGE}:v{etcd.version}"


def environment(
    inventory: Inventory, server: Server, token: str, joined_with: str | None = None
) -> dict[str, str]:
    """etcd's settings for ``server``, as the ``ETCD_*`` variables etcd reads.

    ``token``: the cluster's token (``etcd/token.py`` keeps it; one per formation).
    ``joined_with``: the initial cluster of a member that joined a running
    cluster (its membership when the member was added); None for a founder.
    """
    etcd = inventory.cluster.etcd
    name = server.name
    return {
        "ETCD_NAME": name,
        "ETCD_DATA_DIR": data_dir(inventory),
        # Also on loopback, so a check on the node itself needs no route.
        "ETCD_LISTEN_CLIENT_URLS": f"{client_url(inventory, server)},https://127.0.0.1:{etcd.client_port}",
        "ETCD_ADVERTISE_CLIENT_URLS": client_url(inventory, server),
        "ETCD_LISTEN_PEER_URLS": peer_url(inventory, server),
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": peer_url(inventory, server),
        "ETCD_INITIAL_CLUSTER": joined_with or initial_cluster(inventory),
        "ETCD_INITIAL_CLUSTER_TOKEN": token,
        "ETCD_INITIAL_CLUSTER_STATE": "new" if joined_with is None else "existing",
        "ETCD_STRICT_RECONFIG_CHECK": "true",
        "ETCD_CLIENT_CERT_AUTH": "true",
        "ETCD_TRUSTED_CA_FILE": tls_files(server)[0],
        "ETCD_CERT_FILE": tls_files(server)[1],
        "ETCD_KEY_FILE": tls_files(server)[2],
        "ETCD_PEER_CLIENT_CERT_AUTH": "true",
        "ETCD_PEER_TRUSTED_CA_FILE": f"{ETCD_DIR}/ca.pem",
        "ETCD_PEER_CERT_FILE": f"{ETCD_DIR}/etcd-peer-{name}.pem",
        "ETCD_PEER_KEY_FILE": f"{ETCD_DIR}/etcd-peer-{name}-key.pem",
    }


def tls_files(server: Server) -> tuple[str, str, str]:
    """CA, server certificate and key a member serves clients with (and checks its own
    health with: the server certificate also carries client auth)."""
    name = server.name
    return (
        f"{ETCD_DIR}/ca.pem",
        f"{ETCD_DIR}/etcd-server-{name}.pem",
        f"{ETCD_DIR}/etcd-server-{name}-key.pem",
    )


def container_engine(server: Server) -> str:
    """docker on Flatcar, podman on Fedora CoreOS (what each ships)."""
    return "/usr/bin/podman" if server.os.distribution == "fedora-coreos" else "/usr/bin/docker"


def host_folder(inventory: Inventory) -> str | None:
    """Where the host runtime's etcd and etcdctl of the inventory's version live on a
    node: None for the default version (the OS's ``/usr/bin/etcd``), else labctl's
    folder for that version, which the layer fills from this machine's build."""
    version = inventory.cluster.etcd.version
    if not version or version == default("cluster", "etcd", "version"):
        return None
    return f"{HOST_BUILDS}/v{version}"


def host_binary(inventory: Inventory) -> str:
    folder = host_folder(inventory)
    return HOST_ETCD if folder is None else f"{folder}/etcd"


def exec_start(inventory: Inventory, server: Server, runtime: str) -> list[tuple[str, str]]:
    """The unit's runtime-dependent lines: the only difference between the two runtimes."""
    if runtime == "host":
        return [("ExecStart", exec_command([host_binary(inventory)]))]
    engine = container_engine(server)
    data = data_dir(inventory)
    run = [
        engine, "run", "--rm", "--name", CONTAINER, "--network", "host",
        "--env-file", ENV_PATH, "--volume", f"{data}:{data}",
        "--volume", f"{ETCD_DIR}:{ETCD_DIR}:ro", image(inventory), "/usr/local/bin/etcd",
    ]  # fmt: skip
    return [
        ("ExecStartPre", exec_command([engine, "rm", "-f", CONTAINER], prefix="-")),
        ("ExecStart", exec_command(run)),
        ("ExecStop", exec_command([engine, "stop", CONTAINER])),
    ]


def unit(inventory: Inventory, server: Server, runtime: str) -> Unit:
    if runtime not in RUNTIMES:
        raise ValueError(f"etcd runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    return {
        "Unit": [
            ("Description", f"etcd member {server.name} (written by labctl)"),
            ("Wants", "network-online.target"),
            ("After", "network-online.target"),
        ],
        "Service": [
            ("EnvironmentFile", ENV_PATH),
            *exec_start(inventory, server, runtime),
            ("Restart", "always"),
            ("RestartSec", "5"),
            ("LimitNOFILE", "40000"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }


def member_files(
    inventory: Inventory,
    server: Server,
    runtime: str,
    token: str,
    joined_with: str | None = None,
) -> MemberFiles:
    return MemberFiles(
        server.name,
        env_text(environment(inventory, server, token, joined_with)),
        unit_text(unit(inventory, server, runtime)),
    )


def config_digest(inventory: Inventory, runtime: str, token: str) -> str:
    """Changes exactly when any member's files change (what a snapshot is taken before)."""
    files = [member_files(inventory, s, runtime, token) for s in members(inventory)]
    return hashlib.sha256(json.dumps([(f.server, f.digest) for f in files]).encode()).hexdigest()
