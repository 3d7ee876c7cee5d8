"""The simulated lab's platform: `labctl sim env`'s variables, read in one place, each checked."""

from __future__ import annotations

import pytest

from labctl.cli.platform_choice import chosen
from labctl.cli.platform_choice import require_inventory as as_this_lab_loads
from labctl.errors import UsageError
from labctl.inventory import require_inventory
from labctl.platform import RealPlatform, as_run
from labctl.sim.platform import SimPlatform, from_environ
from tests.conftest import REFERENCE


def test_a_real_lab_sets_nothing() -> None:
    assert chosen({}) == RealPlatform()
    assert chosen({"LABCTL_ETCD_RUNTIME": ""}) == RealPlatform()  # empty is unset
    assert RealPlatform().differences() == ()


def test_every_variable_reaches_its_field() -> None:
    got = from_environ(
        {
            "LABCTL_ETCD_RUNTIME": "host",
            "LABCTL_KUBE_RUNTIME": "pods",
            "LABCTL_KUBE_BIN_DIR": "/cache/v1/bin",
            "LABCTL_CALICO_BIRD": "/opt/bird",
            "LABCTL_SWITCH_PLATFORM": "frr",
            "LABCTL_CEPH_RUNTIME": "host",
            "LABCTL_CEPH_CONFIG": "mon_data_avail_warn=5, osd_pool_default_size = 2",
            "LABCTL_CONTAINER_ENGINE": "podman",
        }
    )
    assert got == SimPlatform(
        etcd="host",
        kube="pods",
        kube_binaries="/cache/v1/bin",
        calico_bird="/opt/bird",
        switches="frr",
        ceph_runtime="host",
        ceph_config=(("mon_data_avail_warn", "5"), ("osd_pool_default_size", "2")),
        engine="podman",
    )
    # One line per difference, the shared kernel first.
    assert len(got.differences()) == 10
    assert "containers: podman in each node's namespaces" in got.differences()[1]
    assert got.differences()[0].startswith("nodes: network namespaces of one kernel")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (
            "LABCTL_ETCD_RUNTIME",
            "docker",
            "LABCTL_ETCD_RUNTIME is 'docker'; it must be container, host",
        ),
        ("LABCTL_KUBE_RUNTIME", "k3s", "it must be static-pods, host, pods"),
        ("LABCTL_SWITCH_PLATFORM", "junos", "it must be frr, eos, ios"),
        ("LABCTL_CEPH_RUNTIME", "docker", "LABCTL_CEPH_RUNTIME is 'docker'"),
        ("LABCTL_CEPH_CONFIG", "oops", "LABCTL_CEPH_CONFIG: 'oops' is not key=value"),
        ("LABCTL_CONTAINER_ENGINE", "docker", "LABCTL_CONTAINER_ENGINE is 'docker'"),
        # Stand-ins reach the nodes as inventory values do: the same grammars hold them.
        (
            "LABCTL_KUBE_BIN_DIR",
            "/var/cache/labctl/bin;id",
            "LABCTL_KUBE_BIN_DIR is '/var/cache/labctl/bin;id', which is not of the "
            "expected form: An absolute, normalised path on a node",
        ),
        ("LABCTL_CALICO_BIRD", "/opt/../bin/sh", "An absolute, normalised path on a node"),
        (
            "LABCTL_CEPH_CONFIG",
            "auth_cluster_required = none #",
            "the value 'none #' is not of the form: A Ceph option value",
        ),
        ("LABCTL_CEPH_CONFIG", "[client]=x", "the key '[client]' is not of the form"),
    ],
)
def test_a_bad_value_is_a_sentence_naming_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        from_environ({name: value})
    assert says in str(e.value)


def test_cephs_stand_ins_change_only_cephs_settings() -> None:
    inventory = require_inventory(REFERENCE)
    assert inventory.cluster.ceph is not None and inventory.cluster.ceph.runtime == "container"
    host = as_run(inventory, SimPlatform(ceph_runtime="host"))
    assert host.cluster.ceph is not None and host.cluster.ceph.runtime == "host"
    assert host.servers == inventory.servers and host.cluster.etcd == inventory.cluster.etcd
    assert as_run(inventory, SimPlatform(etcd="host")) is inventory  # not Ceph's


def test_extra_ceph_config_adds_and_wins_over_the_inventorys() -> None:
    inventory = require_inventory(REFERENCE)
    extra = (("mon_data_avail_warn", "5"), ("osd_pool_default_size", "2"))
    changed = as_run(inventory, SimPlatform(ceph_config=extra))
    assert changed.cluster.ceph is not None
    config = dict(changed.cluster.ceph.config)
    assert config["mon_data_avail_warn"] == "5" and config["osd_pool_default_size"] == "2"
    assert changed.cluster.ceph.runtime == "container"


def test_the_cli_applies_them_and_the_loader_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_CEPH_RUNTIME", "host")
    monkeypatch.setenv("LABCTL_SSH_USER", "someone")
    ceph = as_this_lab_loads(REFERENCE).cluster.ceph
    assert ceph is not None and ceph.runtime == "host"
    loaded = as_this_lab_loads(REFERENCE)
    assert loaded.lab.ssh.login_user == "someone"
    assert loaded.lab.ssh.user == require_inventory(REFERENCE).lab.ssh.user  # Ignition's
    # The inventory package reads no environment: its model is the file's.
    plain = require_inventory(REFERENCE)
    assert plain.cluster.ceph is not None and plain.cluster.ceph.runtime == "container"
    assert plain.lab.ssh.login_user is None


def test_the_binaries_folder_may_name_the_version_it_holds() -> None:
    """What `labctl sim env` exports: `{version}` is filled in from the inventory."""
    exported = "/var/cache/labctl/kubernetes/{version}/bin"
    got = from_environ({"LABCTL_KUBE_BIN_DIR": exported})
    assert got.kube_binaries == exported


def test_the_ssh_overrides_reach_the_targets_and_not_the_nodes_accounts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LABCTL_SSH_* point labctl's logins elsewhere (read by the CLI, no longer by
    labctl/targets.py); the account Ignition creates on the nodes stays the inventory's."""
    from labctl.targets import ssh_target, switch_target

    monkeypatch.setenv("LABCTL_SSH_USER", "someone")
    monkeypatch.setenv("LABCTL_SSH_IDENTITY", "/keys/id")
    monkeypatch.setenv("LABCTL_SSH_KNOWN_HOSTS", "/keys/known")
    inventory = as_this_lab_loads(REFERENCE)
    target = ssh_target(inventory, REFERENCE.parent, "fohn")
    assert (target.user, str(target.identity_file), str(target.known_hosts)) == (
        "someone",
        "/keys/id",
        "/keys/known",
    )
    # A switch's own ssh user wins over the override, as it always did.
    switch = next(s for s in inventory.switches if s.management)
    want = switch.ssh_user or "someone"
    assert switch_target(inventory, REFERENCE.parent, switch.name).user == want
    plain = ssh_target(require_inventory(REFERENCE), REFERENCE.parent, "fohn")
    assert plain.user == inventory.lab.ssh.user != "someone"
