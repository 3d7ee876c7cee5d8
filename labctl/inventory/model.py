"""The inventory as typed, immutable data.

Built only from a document that passed the schema, so construction trusts the
shape. A field the file leaves out takes the schema's ``default`` keyword, read from
the schema itself (one source of truth, the one docs/inventory.md prints). Each
record keeps its document ``path`` so semantic checks can point back at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from labctl.inventory.problems import DocPath
from labctl.inventory.schema import schema


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives. ``literal`` is set only for inline secrets."""

    env: str | None = None
    file: str | None = None
    literal: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "an inline value"


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    cidr: str
    purpose: str
    gateway: str | None
    vlan: int | None
    dns: tuple[str, ...]
    overlaps: tuple[str, ...]
    path: DocPath
    mtu: int | None = None


@dataclass(frozen=True, slots=True)
class Address:
    network: str
    address: str
    path: DocPath


@dataclass(frozen=True, slots=True)
class Bmc:
    type: str
    network: str
    address: str
    port: int
    username: str
    password: SecretRef
    cipher_suites: tuple[int, ...]
    allow_insecure: bool
    mac: str | None
    path: DocPath
    # legacy or uefi: the firmware the boot flags labctl sends name (drivers/ipmi.py).
    boot_mode: str = "legacy"
    # Redfish only (type redfish): how the service is reached and which system it drives.
    scheme: str = "https"
    verify: bool = True
    ca_file: str | None = None
    system: str | None = None
    # The fields the inventory wrote (not defaulted), so a check can refuse a field
    # that means nothing for the BMC's type (cipher_suites on a Redfish BMC).
    given: frozenset[str] = frozenset()

    @property
    def redfish(self) -> bool:
        return self.type == "redfish"


@dataclass(frozen=True, slots=True)
class Nic:
    name: str
    mac: str
    speed: str
    switch: str | None
    port: str | None
    pxe: bool
    addresses: tuple[Address, ...]
    path: DocPath


BY_ID = "/dev/disk/by-id/"


@dataclass(frozen=True, slots=True)
class Disk:
    device: str
    size: str
    type: str
    role: str
    path: DocPath
    wipe: bool = False  # an OSD disk holding data may be overwritten
    wwn: str | None = None  # what udev reports: the node must agree before a write
    serial: str | None = None

    @property
    def by_id(self) -> bool:
        """Named by udev's stable link, which follows the disk whatever the kernel calls it."""
        return self.device.startswith(BY_ID)

    @property
    def stable(self) -> bool:
        """Named so that labctl can tell this disk from another one on the node."""
        return self.by_id or self.wwn is not None or self.serial is not None


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    distribution: str
    channel: str
    reboot_strategy: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Hardware:
    model: str
    cpu_model: str
    cpu_count: int
    memory: str


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    hardware: Hardware | None  # informational: shown, never relied on
    bmc: Bmc
    nics: tuple[Nic, ...]
    disks: tuple[Disk, ...]
    os: OperatingSystem
    roles: frozenset[str]
    path: DocPath

    def addresses(self, network: str | None = None) -> list[Address]:
        return [
            a for nic in self.nics for a in nic.addresses if network is None or a.network == network
        ]


@dataclass(frozen=True, slots=True)
class SwitchPort:
    name: str
    speed: str | None
    path: DocPath
    uplink: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Switch:
    name: str
    model: str
    management: Address | None
    asn: int | None
    router_id: str | None
    ports: tuple[SwitchPort, ...]
    path: DocPath
    platform: str | None = None  # frr, eos, ios: the configuration dialect
    interfaces: tuple[Address, ...] = ()
    ssh_user: str | None = None
    ssh_port: int = 22
    bgp_status: str | None = None  # ssh-frr, snmp: where its BGP sessions are read
    snmp: Snmp | None = None

    @property
    def bgp_source(self) -> str | None:
        """Where its BGP side is read from (None: nowhere), ``bgp_status`` or the platform's way."""
        if self.bgp_status is not None:
            return self.bgp_status
        return "ssh-frr" if self.platform == "frr" else None

    def interface(self, address: str) -> Address | None:
        for a in self.interfaces:
            if a.address == address:
                return a
        return None


@dataclass(frozen=True, slots=True)
class Snmp:
    version: str
    port: int
    username: str | None
    auth_protocol: str
    auth_key: SecretRef | None
    priv_protocol: str
    priv_key: SecretRef | None
    community: SecretRef | None


@dataclass(frozen=True, slots=True)
class Outlet:
    outlet: int
    device: str
    psu: int
    path: DocPath


@dataclass(frozen=True, slots=True)
class Pdu:
    name: str
    model: str
    profile: str
    custom_profile: dict[str, Any] | None
    network: str
    address: str
    outlet_count: int
    snmp: Snmp
    outlets: tuple[Outlet, ...]
    path: DocPath
    stagger: str = "2s"  # between two outlets switched on by `labctl power restore`


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    name: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class KubernetesUpgrade:
    """How a version change rolls through the running cluster (layers/kubernetes.py)."""

    kubelet_batch: int = 1
    drain_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class Kubernetes:
    version: str
    api_endpoint: ApiEndpoint
    pod_cidr: str
    service_cidr: str
    cluster_domain: str
    cluster_dns: str | None = None
    node_cidr_mask_size: int = 24
    runtime: str = "static-pods"
    binary_dir: str = "/opt/bin"
    image_registry: str = "registry.k8s.io"
    ready_timeout: float = 300.0
    upgrade: KubernetesUpgrade = KubernetesUpgrade()


@dataclass(frozen=True, slots=True)
class EtcdSnapshots:
    directory: str
    keep: int


@dataclass(frozen=True, slots=True)
class Etcd:
    version: str | None
    client_port: int
    peer_port: int
    network: str | None = None
    runtime: str = "container"
    image: str | None = None
    data_dir: str = "/var/lib/etcd"
    health_timeout: int = 120
    snapshots: EtcdSnapshots = EtcdSnapshots("etcd-snapshots", 5)


@dataclass(frozen=True, slots=True)
class CalicoPeer:
    """A switch the nodes peer with; ``nodes`` is "all", "attached" or server names."""

    switch: str
    address: str
    nodes: str | tuple[str, ...]
    password: SecretRef | None
    path: DocPath


@dataclass(frozen=True, slots=True)
class CalicoAdvertise:
    """What the nodes announce. ``external_network`` and ``external_cidrs`` together are
    Calico's serviceExternalIPs (``topology.external_ranges`` reads them as one list)."""

    pod_blocks: bool = True
    service_cidr: bool = False
    external_network: str | None = None
    external_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CalicoManifest:
    url: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Calico:
    asn: int
    node_to_node_mesh: bool
    peers: tuple[CalicoPeer, ...]
    nat_outgoing: bool
    version: str | None = None
    manifest: CalicoManifest | None = None
    network: str | None = None
    block_size: int = 26
    advertise: CalicoAdvertise = CalicoAdvertise()
    route_reflector_cluster_id: str = "244.0.0.1"
    mesh_password: SecretRef | None = None
    keepalive_time: int = 30
    hold_time: int = 90


@dataclass(frozen=True, slots=True)
class CephPool:
    name: str
    application: str
    size: int
    pg_num: int | None
    path: DocPath


@dataclass(frozen=True, slots=True)
class CephFilesystem:
    name: str
    metadata_pool: str
    data_pool: str
    path: DocPath


@dataclass(frozen=True, slots=True)
class Ceph:
    fsid: str
    public_network: str
    cluster_network: str | None
    pools: tuple[CephPool, ...]
    filesystems: tuple[CephFilesystem, ...]
    runtime: str = "container"
    version: str | None = None
    image: str | None = None
    max_pg_per_osd: int = 250
    managers: int | None = None  # None: 2, or every monitor server when there are fewer
    health_timeout: int = 600
    # Further ceph.conf [global] options, in the order the inventory gives them.
    config: tuple[tuple[str, str | int | float | bool], ...] = ()


@dataclass(frozen=True, slots=True)
class PkiSettings:
    passphrase: SecretRef
    directory: str
    backend: str
    operator: str
    validity_days: int
    renew_within_days: int


@dataclass(frozen=True, slots=True)
class Receiver:
    """Where Alertmanager sends alerts: ``secret`` is the webhook's token or the SMTP password."""

    name: str
    type: str  # webhook, email
    path: DocPath
    url: str | None = None
    address: str | None = None
    sender: str | None = None
    smarthost: str | None = None
    username: str | None = None
    secret: SecretRef | None = None

    @property
    def secret_field(self) -> str:
        return "token" if self.type == "webhook" else "password"


@dataclass(frozen=True, slots=True)
class MonitoringImages:
    """cluster.monitoring.images: the image each program runs from (runtime container)."""

    prometheus: str = "quay.io/prometheus/prometheus:v2.42.0"
    alertmanager: str = "quay.io/prometheus/alertmanager:v0.25.0"
    node_exporter: str = "quay.io/prometheus/node-exporter:v1.5.0"
    snmp_exporter: str = "quay.io/prometheus/snmp-exporter:v0.21.0"
    ipmi_exporter: str = "quay.io/prometheus-community/ipmi-exporter:v1.6.1"
    bird_exporter: str = "docker.io/czerwonk/bird_exporter:1.4.1"


@dataclass(frozen=True, slots=True)
class Monitoring:
    """cluster.monitoring; ``servers`` empty (and not ``operator``) means the control plane."""

    servers: tuple[str, ...] = ()
    operator: bool = False
    retention: str = "15d"
    scrape_interval: str = "30s"
    receivers: tuple[Receiver, ...] = ()
    # Each named alert's own ``for:`` duration, replacing its rule's (alert name, duration).
    alert_for: tuple[tuple[str, str], ...] = ()
    runtime: str = "container"
    images: MonitoringImages = MonitoringImages()


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    kubernetes: Kubernetes
    etcd: Etcd
    calico: Calico
    ceph: Ceph | None
    pki: PkiSettings | None = None
    monitoring: Monitoring = Monitoring()


@dataclass(frozen=True, slots=True)
class SshSettings:
    user: str
    port: int
    known_hosts: str | None
    identity_file: str | None
    boot_wait: float
    authorized_keys: tuple[str, ...] = ()
    # Who labctl logs in as when not ``user`` (never from the file: the CLI's
    # LABCTL_SSH_USER). ``user`` stays the account nodes are installed with.
    login_user: str | None = field(default=None, metadata={"not_in_file": True})


@dataclass(frozen=True, slots=True)
class BootService:
    """Where and how labctl's boot service answers booting servers (lab.boot)."""

    network: str
    address: str
    interface: str | None = None
    dhcp: str = "full"
    http_port: int = 8080
    assets: str = ".labctl/boot-assets"
    mirror: str | None = None
    install_timeout: float = 1200.0


@dataclass(frozen=True, slots=True)
class Lab:
    name: str
    domain: str
    site: str | None
    allow_literal_secrets: bool
    ssh: SshSettings
    time_servers: tuple[str, ...] = ()
    boot: BootService | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    lab: Lab
    networks: tuple[Network, ...]
    servers: tuple[Server, ...]
    switches: tuple[Switch, ...]
    pdus: tuple[Pdu, ...]
    cluster: Cluster

    def server(self, name: str) -> Server:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(name)

    def network(self, name: str) -> Network:
        for network in self.networks:
            if network.name == name:
                return network
        raise KeyError(name)

    def with_role(self, role: str) -> list[Server]:
        return [s for s in self.servers if role in s.roles]


# -- construction from schema-valid data ------------------------------------


@cache
def default(where: str, *fields: str) -> Any:
    """The schema's ``default`` for a field: ``where`` names a ``$defs`` entry (or ``#``,
    the top level), ``fields`` the properties down to it (through lists and ``$ref``s).
    A field with no default is a KeyError: the model never invents one."""
    root = schema()
    node: Any = root if where == "#" else root["$defs"][where]
    for name in fields:
        while "properties" not in node:
            node = (
                root["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node["items"]
            )
        node = node["properties"][name]
    value = node["default"]
    return tuple(value) if isinstance(value, list) else value


def _get(d: dict[str, Any], name: str, where: str, *fields: str) -> Any:
    """``d[name]``, or the schema's default for it."""
    return d[name] if name in d else default(where, *fields, name)


def _secret(value: Any) -> SecretRef:
    if isinstance(value, dict):
        return SecretRef(env=value.get("env"), file=value.get("file"))
    return SecretRef(literal=str(value))


def _address(d: dict[str, Any], path: DocPath) -> Address:
    return Address(d["network"], d["address"], path)


def _server(d: dict[str, Any], path: DocPath) -> Server:
    b = d["bmc"]
    scheme = _get(b, "scheme", "bmc")
    port = _get(b, "port", "bmc")
    if b["type"] == "redfish" and "port" not in b:
        port = 443 if scheme == "https" else 80
    bmc = Bmc(
        type=b["type"],
        network=b["network"],
        address=b["address"],
        port=port,
        username=b["username"],
        password=_secret(b["password"]),
        cipher_suites=tuple(_get(b, "cipher_suites", "bmc")),
        allow_insecure=_get(b, "allow_insecure", "bmc"),
        mac=b.get("mac"),
        path=(*path, "bmc"),
        boot_mode=_get(b, "boot_mode", "bmc"),
        scheme=scheme,
        verify=_get(b, "verify", "bmc"),
        ca_file=b.get("ca_file"),
        system=b.get("system"),
        given=frozenset(b),
    )
    nics = tuple(
        Nic(
            name=n["name"],
            mac=n["mac"],
            speed=n["speed"],
            switch=n.get("switch"),
            port=n.get("port"),
            pxe=_get(n, "pxe", "nic"),
            addresses=tuple(
                _address(a, (*path, "nics", i, "addresses", j))
                for j, a in enumerate(n.get("addresses", ()))
            ),
            path=(*path, "nics", i),
        )
        for i, n in enumerate(d["nics"])
    )
    disks = tuple(
        Disk(
            x["device"],
            x["size"],
            x["type"],
            x["role"],
            (*path, "disks", i),
            _get(x, "wipe", "disk"),
            x.get("wwn"),
            x.get("serial"),
        )
        for i, x in enumerate(d["disks"])
    )
    hw = d.get("hardware")
    os_ = d["os"]
    return Server(
        name=d["name"],
        hardware=(
            Hardware(hw["model"], hw["cpus"]["model"], hw["cpus"]["count"], hw["memory"])
            if hw is not None
            else None
        ),
        bmc=bmc,
        nics=nics,
        disks=disks,
        os=OperatingSystem(
            os_["distribution"],
            _get(os_, "channel", "os"),
            _get(os_, "reboot_strategy", "os"),
            os_.get("version"),
        ),
        roles=frozenset(d["roles"]),
        path=path,
    )


def _switch(d: dict[str, Any], path: DocPath) -> Switch:
    mgmt = d.get("management")
    ssh = d.get("ssh", {})
    return Switch(
        name=d["name"],
        model=d["model"],
        management=_address(mgmt, (*path, "management")) if mgmt else None,
        asn=d.get("asn"),
        router_id=d.get("router_id"),
        ports=tuple(
            SwitchPort(
                p["name"],
                p.get("speed"),
                (*path, "ports", i),
                uplink=_get(p, "uplink", "switch_port"),
                description=p.get("description"),
            )
            for i, p in enumerate(d.get("ports", ()))
        ),
        path=path,
        platform=d.get("platform"),
        interfaces=tuple(
            _address(a, (*path, "interfaces", i)) for i, a in enumerate(d.get("interfaces", ()))
        ),
        ssh_user=ssh.get("user"),
        ssh_port=_get(ssh, "port", "switch", "ssh"),
        bgp_status=d.get("bgp_status"),
        snmp=_snmp(d["snmp"]) if "snmp" in d else None,
    )


def _snmp(s: dict[str, Any]) -> Snmp:
    return Snmp(
        version=str(_get(s, "version", "snmp")),  # `version: 3` is the number 3 to YAML
        port=_get(s, "port", "snmp"),
        username=s.get("username"),
        auth_protocol=_get(s, "auth_protocol", "snmp"),
        auth_key=_secret(s["auth_key"]) if "auth_key" in s else None,
        priv_protocol=_get(s, "priv_protocol", "snmp"),
        priv_key=_secret(s["priv_key"]) if "priv_key" in s else None,
        community=_secret(s["community"]) if "community" in s else None,
    )


def _calico(calico: dict[str, Any]) -> Calico:
    advertise = calico.get("advertise", {})
    manifest = calico.get("manifest")
    mesh_password = calico.get("mesh_password")
    peers = []
    for i, p in enumerate(calico.get("peers", ())):
        nodes = _get(p, "nodes", "cluster", "calico", "peers")
        peers.append(
            CalicoPeer(
                switch=p["switch"],
                address=p["address"],
                nodes=nodes if isinstance(nodes, str) else tuple(nodes),
                password=_secret(p["password"]) if "password" in p else None,
                path=("cluster", "calico", "peers", i),
            )
        )
    return Calico(
        asn=_get(calico, "asn", "cluster", "calico"),
        node_to_node_mesh=_get(calico, "node_to_node_mesh", "cluster", "calico"),
        peers=tuple(peers),
        nat_outgoing=_get(calico, "nat_outgoing", "cluster", "calico"),
        version=calico.get("version"),
        manifest=CalicoManifest(manifest["url"], manifest["sha256"]) if manifest else None,
        network=calico.get("network"),
        block_size=_get(calico, "block_size", "cluster", "calico"),
        advertise=CalicoAdvertise(
            pod_blocks=_get(advertise, "pod_blocks", "cluster", "calico", "advertise"),
            service_cidr=_get(advertise, "service_cidr", "cluster", "calico", "advertise"),
            external_network=advertise.get("external_network"),
            external_cidrs=tuple(advertise.get("external_cidrs", ())),
        ),
        route_reflector_cluster_id=_get(calico, "route_reflector_cluster_id", "cluster", "calico"),
        mesh_password=_secret(mesh_password) if mesh_password is not None else None,
        keepalive_time=_get(calico, "keepalive_time", "cluster", "calico"),
        hold_time=_get(calico, "hold_time", "cluster", "calico"),
    )


def _pdu(d: dict[str, Any], path: DocPath) -> Pdu:
    s = d["snmp"]
    return Pdu(
        name=d["name"],
        model=d["model"],
        profile=d["profile"],
        custom_profile=d.get("custom_profile"),
        network=d["network"],
        address=d["address"],
        outlet_count=d["outlet_count"],
        snmp=_snmp(s),
        outlets=tuple(
            Outlet(o["outlet"], o["device"], _get(o, "psu", "outlet"), (*path, "outlets", i))
            for i, o in enumerate(d.get("outlets", ()))
        ),
        path=path,
        stagger=_get(d, "stagger", "pdu"),
    )


_K8S = ("cluster", "kubernetes")
_ETCD = ("cluster", "etcd")
_CEPH = ("cluster", "ceph")
_PKI = ("cluster", "pki")
_MON = ("cluster", "monitoring")


def _monitoring(m: dict[str, Any]) -> Monitoring:
    receivers = []
    for i, r in enumerate(_get(m, "receivers", *_MON)):
        secret = r.get("token" if r["type"] == "webhook" else "password")
        receivers.append(
            Receiver(
                name=r["name"],
                type=r["type"],
                path=(*_MON, "receivers", i),
                url=r.get("url"),
                address=r.get("address"),
                sender=r.get("from"),
                smarthost=r.get("smarthost"),
                username=r.get("username"),
                secret=_secret(secret) if secret is not None else None,
            )
        )
    return Monitoring(
        servers=tuple(_get(m, "servers", *_MON)),
        operator=_get(m, "operator", *_MON),
        retention=_get(m, "retention", *_MON),
        scrape_interval=_get(m, "scrape_interval", *_MON),
        receivers=tuple(receivers),
        alert_for=tuple(sorted(_get(m, "alert_for", *_MON).items())),
        runtime=_get(m, "runtime", *_MON),
        images=MonitoringImages(
            **{
                name: _get(m.get("images", {}), name, *_MON, "images")
                for name in MonitoringImages.__dataclass_fields__
            }
        ),
    )


def _cluster(d: dict[str, Any], lab_name: str) -> Cluster:
    k = d["kubernetes"]
    api = k["api_endpoint"]
    upgrade = k.get("upgrade", {})
    etcd = d.get("etcd", {})
    snapshots = etcd.get("snapshots", {})
    calico = d.get("calico", {})
    ceph = d.get("ceph")
    pki = d.get("pki")
    return Cluster(
        name=d.get("name", lab_name),
        kubernetes=Kubernetes(
            version=_get(k, "version", *_K8S),
            api_endpoint=ApiEndpoint(
                api["name"], api["address"], _get(api, "port", *_K8S, "api_endpoint")
            ),
            pod_cidr=k["pod_cidr"],
            service_cidr=k["service_cidr"],
            cluster_domain=_get(k, "cluster_domain", *_K8S),
            cluster_dns=k.get("cluster_dns"),
            node_cidr_mask_size=_get(k, "node_cidr_mask_size", *_K8S),
            runtime=_get(k, "runtime", *_K8S),
            binary_dir=_get(k, "binary_dir", *_K8S),
            image_registry=_get(k, "image_registry", *_K8S),
            ready_timeout=float(_get(k, "ready_timeout", *_K8S)),
            upgrade=KubernetesUpgrade(
                _get(upgrade, "kubelet_batch", *_K8S, "upgrade"),
                float(_get(upgrade, "drain_timeout", *_K8S, "upgrade")),
            ),
        ),
        etcd=Etcd(
            version=_get(etcd, "version", *_ETCD),
            client_port=_get(etcd, "client_port", *_ETCD),
            peer_port=_get(etcd, "peer_port", *_ETCD),
            network=etcd.get("network"),
            runtime=_get(etcd, "runtime", *_ETCD),
            image=etcd.get("image"),
            data_dir=_get(etcd, "data_dir", *_ETCD),
            health_timeout=_get(etcd, "health_timeout", *_ETCD),
            snapshots=EtcdSnapshots(
                _get(snapshots, "directory", *_ETCD, "snapshots"),
                _get(snapshots, "keep", *_ETCD, "snapshots"),
            ),
        ),
        calico=_calico(calico),
        ceph=Ceph(
            fsid=ceph["fsid"],
            public_network=ceph["public_network"],
            cluster_network=ceph.get("cluster_network"),
            pools=tuple(
                CephPool(
                    p["name"],
                    p["application"],
                    _get(p, "size", *_CEPH, "pools"),
                    p.get("pg_num"),
                    ("cluster", "ceph", "pools", i),
                )
                for i, p in enumerate(ceph["pools"])
            ),
            filesystems=tuple(
                CephFilesystem(
                    f["name"],
                    f["metadata_pool"],
                    f["data_pool"],
                    ("cluster", "ceph", "filesystems", i),
                )
                for i, f in enumerate(ceph.get("filesystems", ()))
            ),
            runtime=_get(ceph, "runtime", *_CEPH),
            version=_get(ceph, "version", *_CEPH),
            image=ceph.get("image"),
            max_pg_per_osd=_get(ceph, "max_pg_per_osd", *_CEPH),
            managers=ceph.get("managers"),
            health_timeout=_get(ceph, "health_timeout", *_CEPH),
            config=tuple(ceph.get("config", {}).items()),
        )
        if ceph
        else None,
        pki=PkiSettings(
            passphrase=_secret(pki["passphrase"]),
            directory=_get(pki, "directory", *_PKI),
            backend=_get(pki, "backend", *_PKI),
            operator=_get(pki, "operator", *_PKI),
            validity_days=_get(pki, "validity_days", *_PKI),
            renew_within_days=_get(pki, "renew_within_days", *_PKI),
        )
        if pki
        else None,
        monitoring=_monitoring(d.get("monitoring", {})),
    )


def _boot(d: dict[str, Any]) -> BootService:
    return BootService(
        network=d["network"],
        address=d["address"],
        interface=d.get("interface"),
        dhcp=_get(d, "dhcp", "boot"),
        http_port=_get(d, "http_port", "boot"),
        assets=_get(d, "assets", "boot"),
        mirror=d.get("mirror"),
        install_timeout=float(_get(d, "install_timeout", "boot")),
    )


def build_inventory(data: dict[str, Any]) -> Inventory:
    """Typed inventory from a document that passed the schema."""
    lab = data["lab"]
    ssh = lab.get("ssh", {})
    return Inventory(
        lab=Lab(
            name=lab["name"],
            domain=lab["domain"],
            site=lab.get("site"),
            allow_literal_secrets=_get(lab, "allow_literal_secrets", "#", "lab"),
            ssh=SshSettings(
                user=_get(ssh, "user", "ssh"),
                port=_get(ssh, "port", "ssh"),
                known_hosts=ssh.get("known_hosts"),
                identity_file=ssh.get("identity_file"),
                boot_wait=float(_get(ssh, "boot_wait", "ssh")),
                authorized_keys=tuple(_get(ssh, "authorized_keys", "ssh")),
            ),
            time_servers=tuple(_get(lab, "time_servers", "#", "lab")),
            boot=_boot(lab["boot"]) if "boot" in lab else None,
        ),
        networks=tuple(
            Network(
                name=n["name"],
                cidr=n["cidr"],
                purpose=n["purpose"],
                gateway=n.get("gateway"),
                vlan=n.get("vlan"),
                dns=tuple(n.get("dns", ())),
                overlaps=tuple(n.get("overlaps", ())),
                path=("networks", i),
                mtu=n.get("mtu"),
            )
            for i, n in enumerate(data["networks"])
        ),
        servers=tuple(_server(s, ("servers", i)) for i, s in enumerate(data["servers"])),
        switches=tuple(_switch(s, ("switches", i)) for i, s in enumerate(data.get("switches", ()))),
        pdus=tuple(_pdu(p, ("pdus", i)) for i, p in enumerate(data.get("pdus", ()))),
        cluster=_cluster(data["cluster"], lab["name"]),
    )
