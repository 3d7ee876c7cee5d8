"""The simulated lab's stand-ins: read from the environment in one place, each checked."""

from __future__ import annotations

import pytest

from labctl.errors import UsageError
from labctl.inventory import require_inventory
from labctl.standins import StandIns, applied, from_environ
from tests.conftest import REFERENCE


def test_a_real_lab_sets_nothing() -> None:
    assert from_environ({}) == StandIns()
    assert from_environ({"LABCTL_ETCD_RUNTIME": ""}) == StandIns()  # empty is unset


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
        }
    )
    assert got == StandIns(
        etcd_runtime="host",
        kube_runtime="pods",
        kube_bin_dir="/cache/v1/bin",
        calico_bird="/opt/bird",
        switch_platform="frr",
        ceph_runtime="host",
        ceph_config=(("mon_data_avail_warn", "5"), ("osd_pool_default_size", "2")),
    )


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
    host = applied(inventory, StandIns(ceph_runtime="host"))
    assert host.cluster.ceph is not None and host.cluster.ceph.runtime == "host"
    assert host.servers == inventory.servers and host.cluster.etcd == inventory.cluster.etcd
    assert applied(inventory, StandIns(etcd_runtime="host")) is inventory  # not Ceph's


def test_extra_ceph_config_adds_and_wins_over_the_inventorys() -> None:
    inventory = require_inventory(REFERENCE)
    extra = (("mon_data_avail_warn", "5"), ("osd_pool_default_size", "2"))
    changed = applied(inventory, StandIns(ceph_config=extra))
    assert changed.cluster.ceph is not None
    config = dict(changed.cluster.ceph.config)
    assert config["mon_data_avail_warn"] == "5" and config["osd_pool_default_size"] == "2"
    assert changed.cluster.ceph.runtime == "container"


def test_loading_applies_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_CEPH_RUNTIME", "host")
    ceph = require_inventory(REFERENCE).cluster.ceph
    assert ceph is not None and ceph.runtime == "host"


def test_the_binaries_folder_may_name_the_version_it_holds() -> None:
    """What `labctl sim env` exports: `{version}` is filled in from the inventory."""
    exported = "/var/cache/labctl/kubernetes/{version}/bin"
    got = from_environ({"LABCTL_KUBE_BIN_DIR": exported})
    assert got.kube_bin_dir == exported
