"""LABCTL_CEPH_RUNTIME and _CONFIG: the simulated lab's Ceph, the inventory unedited."""

from __future__ import annotations

import pytest

from labctl.errors import LabctlError
from labctl.inventory import require_inventory, with_runtime_overrides
from tests.conftest import REFERENCE


def test_the_override_changes_only_cephs_runtime() -> None:
    inventory = require_inventory(REFERENCE)
    assert inventory.cluster.ceph is not None and inventory.cluster.ceph.runtime == "container"
    host = with_runtime_overrides(inventory, {"LABCTL_CEPH_RUNTIME": "host"})
    assert host.cluster.ceph is not None and host.cluster.ceph.runtime == "host"
    assert host.servers == inventory.servers and host.cluster.etcd == inventory.cluster.etcd
    assert with_runtime_overrides(inventory, {}) is inventory


def test_a_bad_override_is_a_sentence() -> None:
    inventory = require_inventory(REFERENCE)
    with pytest.raises(LabctlError, match="LABCTL_CEPH_RUNTIME is 'docker'; it must be"):
        with_runtime_overrides(inventory, {"LABCTL_CEPH_RUNTIME": "docker"})


def test_extra_config_adds_and_wins_over_the_inventorys() -> None:
    inventory = require_inventory(REFERENCE)
    env = {"LABCTL_CEPH_CONFIG": "mon_data_avail_warn=5, osd_pool_default_size = 2"}
    changed = with_runtime_overrides(inventory, env)
    assert changed.cluster.ceph is not None
    config = dict(changed.cluster.ceph.config)
    assert config["mon_data_avail_warn"] == "5" and config["osd_pool_default_size"] == "2"
    assert changed.cluster.ceph.runtime == "container"
    with pytest.raises(LabctlError, match="LABCTL_CEPH_CONFIG: 'oops' is not key=value"):
        with_runtime_overrides(inventory, {"LABCTL_CEPH_CONFIG": "oops"})
