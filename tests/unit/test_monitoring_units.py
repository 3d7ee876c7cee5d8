"""The monitoring programs' units: containers of the inventory's images, never root.

Goldens for fohn (Flatcar: docker) in both runtimes; then what must hold of every unit
whatever the golden says: a container's ``--user`` is the program's own uid (not 0)
and its image the inventory's, a host unit has ``User=`` its own user, node-exporter
sees the host as upstream documents, and an image reference that is not one is
refused by validate at its line, so it never reaches a unit file.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from labctl.inventory import load_inventory, require_inventory
from labctl.inventory.model import Inventory
from labctl.render.monitoring import units
from tests.conftest import REFERENCE, assert_golden


def reference() -> Inventory:
    return require_inventory(REFERENCE)


def every_unit(inv: Inventory, runtime: str) -> list[units.UnitFile]:
    fohn = next(s for s in inv.servers if s.name == "fohn")
    return [
        units.node_exporter(inv, fohn, runtime),
        units.bird_exporter(inv, fohn, runtime),
        *units.server_units(inv, fohn, runtime),
    ]


def lines(unit: units.UnitFile, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.text.splitlines() if line.startswith(f"{key}=")]


@pytest.mark.parametrize("runtime", units.RUNTIMES)
def test_units_golden(runtime: str) -> None:
    text = "".join(f"# {u.name}\n{u.text}\n" for u in every_unit(reference(), runtime))
    assert_golden(f"monitoring/units-{runtime}.txt", text)


def test_each_container_runs_the_inventorys_image_as_its_programs_own_user() -> None:
    inv = reference()
    defaults = {
        "labctl-node-exporter": "quay.io/prometheus/node-exporter:v1.5.0",
        "labctl-prometheus": "quay.io/prometheus/prometheus:v2.42.0",
        "labctl-alertmanager": "quay.io/prometheus/alertmanager:v0.25.0",
        "labctl-snmp-exporter": "quay.io/prometheus/snmp-exporter:v0.21.0",
        "labctl-ipmi-exporter": "quay.io/prometheus-community/ipmi-exporter:v1.6.1",
        "labctl-bird-exporter": "docker.io/czerwonk/bird_exporter:1.4.1",
    }
    uids = set()
    for unit in every_unit(inv, "container"):
        (start,) = lines(unit, "ExecStart")
        argv = shlex.split(start)
        assert argv[:3] == ["/usr/bin/docker", "run", "--rm"]  # Flatcar ships docker
        program = units.PROGRAMS[unit.name]
        uid = argv[argv.index("--user") + 1]
        assert uid == f"{program.uid}:{program.uid}" and program.uid != 0
        uids.add(program.uid)
        entry = argv.index("--entrypoint")
        assert argv[entry + 1] == program.image_binary  # upstream's path, not Debian's
        assert argv[entry + 2] == defaults[program.container]
        assert not any(word.startswith("/usr/bin/prometheus") for word in argv)
        assert "--privileged" not in argv
        assert lines(unit, "User") == []  # the engine's CLI runs as root; the program not
    assert len(uids) == 6  # each its own: no exporter reads another's credentials


def test_node_exporter_sees_the_host_as_upstream_documents() -> None:
    inv = reference()
    fohn = inv.servers[0]
    argv = shlex.split(lines(units.node_exporter(inv, fohn, "container"), "ExecStart")[0])
    assert argv[argv.index("--pid") + 1] == "host"
    assert argv[argv.index("--network") + 1] == "host"
    assert "/:/host:ro,rslave" in argv
    assert "--path.rootfs=/host" in argv


def test_the_bgp_exporter_reads_calico_nodes_bird_socket_as_its_own_user() -> None:
    """calico-node's BIRD 1.6 socket (BIRD 1.x's protocol, no -bird.v2), the folder
    mounted read-only, and, first and as root, the tmpfiles entry whose ACL lets this
    uid (and no other) connect to the root-owned 0660 socket."""
    inv = reference()
    uid = units.PROGRAMS[units.BIRD_EXPORTER].uid
    for runtime in units.RUNTIMES:
        unit = units.bird_exporter(inv, inv.servers[0], runtime)
        argv = shlex.split(lines(unit, "ExecStart")[0])
        assert "-bird.socket=/var/run/calico/bird.ctl" in argv
        assert "-bird.v2=false" in argv and "-bird.ipv6=false" in argv
        assert "-web.listen-address=:9324" in argv
        assert lines(unit, "ExecStartPre")[0] == (
            "+/usr/bin/systemd-tmpfiles --create /etc/tmpfiles.d/labctl-bird-exporter.conf"
        )
        if runtime == "container":
            assert "/var/run/calico:/var/run/calico:ro" in argv
            assert argv[argv.index("--user") + 1] == f"{uid}:{uid}"
    assert units.bird_tmpfiles().splitlines()[1:] == [
        "d /run/calico 0755 root root -",
        f"a+ /run/calico - - - - default:user:{uid}:rw",
        f"a+ /run/calico/bird.ctl - - - - user:{uid}:rw",
    ]


def test_the_simulated_nodes_bird_has_its_socket_where_calico_nodes_is() -> None:
    """The exporter reads the same path on both: no sim difference."""
    from labctl.render.monitoring.paths import BIRD_SOCKET
    from labctl.sim.render.bird import CONTROL_SOCKET

    assert CONTROL_SOCKET == BIRD_SOCKET == "/var/run/calico/bird.ctl"


def test_host_units_run_debians_binaries_each_as_its_own_user() -> None:
    for unit in every_unit(reference(), "host"):
        program = units.PROGRAMS[unit.name]
        assert lines(unit, "User") == [program.user] and program.user != "root"
        assert lines(unit, "Group") == [program.user]
        assert shlex.split(lines(unit, "ExecStart")[0])[0] == program.host_binary


def test_prometheus_reads_copies_of_its_keys_its_user_owns() -> None:
    for runtime in units.RUNTIMES:
        prometheus = next(u for u in every_unit(reference(), runtime) if u.name == units.PROMETHEUS)
        copies = [shlex.split(line.lstrip("+")) for line in lines(prometheus, "ExecStartPre")]
        copies = [argv for argv in copies if argv[0] == "/usr/bin/install"]
        assert all(line.startswith("+") for line in lines(prometheus, "ExecStartPre")[:3])
        uid = str(units.PROGRAMS[units.PROMETHEUS].uid)
        for argv in copies:
            assert argv[argv.index("-o") + 1] == uid and argv[argv.index("-g") + 1] == uid
        sources = {argv[-2] for argv in copies[1:]}
        assert sources == {
            "/etc/ssl/etcd/etcd-client-prometheus-key.pem",
            "/etc/kubernetes/ssl/prometheus-key.pem",
        }


def test_fedora_coreos_runs_them_under_podman(tmp_path: Path) -> None:
    text = re.sub(
        r"\{distribution: flatcar, channel: \w+\}",
        "{distribution: fedora-coreos}",
        REFERENCE.read_text(),
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    for unit in every_unit(require_inventory(path), "container"):
        assert lines(unit, "ExecStart")[0].startswith("/usr/bin/podman run ")


def test_the_inventory_names_the_images(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text().replace(
            "\ncluster:\n",
            "\ncluster:\n  monitoring:\n    images:\n"
            "      prometheus: registry.lab.example.net:5000/mirror/prometheus:v2.42.0\n",
            1,
        )
    )
    inv = require_inventory(path)
    assert inv.cluster.monitoring.images.prometheus.startswith("registry.lab.example.net:5000/")
    prometheus = next(u for u in every_unit(inv, "container") if u.name == units.PROMETHEUS)
    assert " registry.lab.example.net:5000/mirror/prometheus:v2.42.0 " in prometheus.text


@pytest.mark.parametrize(
    "bad", ['"quay.io/prometheus/prometheus:v2 --privileged"', "Quay.io/UPPER/case:v1", '"a\\nb"']
)
def test_an_image_that_is_no_reference_is_refused_at_its_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text().replace(
            "\ncluster:\n",
            f"\ncluster:\n  monitoring:\n    images:\n      node_exporter: {bad}\n",
            1,
        )
    )
    result = load_inventory(path)
    line = path.read_text().splitlines().index(f"      node_exporter: {bad}") + 1
    found = [p for p in result.problems if p.position and p.position.line == line]
    assert found, [(p.check_id, p.message) for p in result.problems]
    assert "images" in str(found[0].path) or "node_exporter" in found[0].message


def test_a_runtime_that_is_neither_is_refused() -> None:
    inv = reference()
    with pytest.raises(ValueError, match="not one of container, host"):
        units.node_exporter(inv, inv.servers[0], "pods")
