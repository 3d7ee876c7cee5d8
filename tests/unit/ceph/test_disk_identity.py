"""Which disks labctl may wipe: named by identity, never by a kernel name that moves.

``validate`` refuses ``wipe: true`` on ``/dev/sdX`` (a reinstall can hand that name
to another OSD's disk) and any ``device`` that is not a plain path under /dev, each
with ``file:line:col``, a sentence, and no traceback. What the node says about the
disk before a write is tested in test_osd_prepare.py and, on the simulated lab's
disks, in tests/e2e/test_ceph_lab.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.inventory import load_inventory
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl

SDB = "{device: /dev/sdb, size: 900GB, type: hdd, role: osd}"


def _inventory(tmp_path: Path, disk: str) -> Path:
    text = REFERENCE.read_text()
    assert SDB in text
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace(SDB, disk, 1))
    return path


def test_wipe_on_a_kernel_name_is_refused_with_where_and_how(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "{device: /dev/sdb, size: 900GB, type: hdd, role: osd, wipe: true}")
    done = run_labctl("validate", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    line = (
        path.read_text()
        .splitlines()
        .index("      - {device: /dev/sdb, size: 900GB, type: hdd, role: osd, wipe: true}")
    )
    assert f"{path}:{line + 1}:69: error LAB112 servers[0].disks[1].wipe: fohn /dev/sdb" in (
        done.stdout
    )
    assert "ls -l /dev/disk/by-id" in done.stdout and "wwn or serial" in done.stdout


def test_bootstrap_refuses_it_before_writing_anything(tmp_path: Path) -> None:
    _inventory(tmp_path, "{device: /dev/sdb, size: 900GB, type: hdd, role: osd, wipe: true}")
    done = run_labctl("bootstrap", "--only", "ceph", cwd=tmp_path)
    assert done.returncode == 1
    assert "inventory.yaml:82:69: error LAB112" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.yaml"]  # no .labctl


@pytest.mark.parametrize(
    "disk",
    [
        "{device: /dev/disk/by-id/wwn-0x5000c500a1b2c3d4, size: 900GB, type: hdd, role: osd, "
        "wipe: true}",
        "{device: /dev/disk/by-id/ata-ST1000NM0033-9ZM173_Z1W0A1B2, size: 900GB, type: hdd, "
        "role: osd, wipe: true}",
        "{device: /dev/sdb, wwn: '0x5000c500a1b2c3d4', size: 900GB, type: hdd, role: osd, "
        "wipe: true}",
        "{device: /dev/sdb, serial: Z1W0A1B2, size: 900GB, type: hdd, role: osd, wipe: true}",
    ],
    ids=["by-id-wwn", "by-id-ata", "wwn", "serial"],
)
def test_wipe_on_a_stable_reference_is_accepted(tmp_path: Path, disk: str) -> None:
    assert load_inventory(_inventory(tmp_path, disk)).problems == []


# Every one of these reaches the OSD script's argv as the disk to zero.
HOSTILE_DEVICES = [
    "/dev/sdb; reboot",
    "/dev/sdb && rm -rf /",
    "/dev/$(reboot)",
    "/dev/`reboot`",
    "/dev/sdb|tee /dev/sda",
    "/dev/sd*",
    "/dev/sd?",
    "/dev/sdb\nreboot",
    "/dev/sdb\n",
    "/dev/sd b",
    "/dev/../etc/shadow",
    "/dev/disk/by-id/../../sda",
    "/dev/./sdb",
    "/dev//sdb",
    "/dev/sdb/",
    "sdb",
    "dev/sdb",
    "/etc/passwd",
    "/dev/",
    "-/dev/sdb",
    "/dev/sdb'",
    '/dev/sdb"',
    "/dev/sdb\\",
    "/dev/sdb>x",
    "/dev/sdb\t",
    "/dev/${IFS}sdb",
    "/dev/sd\u00e9",
    "/dev/" + "a" * 300,
]


@pytest.mark.parametrize("device", HOSTILE_DEVICES, ids=[repr(d) for d in HOSTILE_DEVICES])
def test_a_device_that_is_no_plain_path_is_refused(tmp_path: Path, device: str) -> None:
    quoted = '"' + device.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    quoted = quoted.replace("\t", "\\t")
    path = _inventory(tmp_path, f"{{device: {quoted}, size: 900GB, type: hdd, role: osd}}")
    problems = load_inventory(path).problems
    devices = [p for p in problems if p.path == ("servers", 0, "disks", 1, "device")]
    assert [p.check_id for p in devices] == ["LAB005"], problems
    where = devices[0].position
    assert where is not None and where.line > 0 and where.column > 0
    assert "absolute path under /dev" in devices[0].message


@pytest.mark.parametrize(
    ("field", "value"),
    [("wwn", "5000c500a1b2c3d4"), ("wwn", "0x5000c500a1b2c3d4; reboot"), ("wwn", "0xZZ"),
     ("serial", "Z1W0 A1B2"), ("serial", "$(reboot)"), ("serial", "-rf"), ("serial", "Z1W0\n"),
     ("serial", "*")],
)  # fmt: skip
def test_a_malformed_wwn_or_serial_is_refused(tmp_path: Path, field: str, value: str) -> None:
    quoted = '"' + value.replace("\n", "\\n") + '"'
    path = _inventory(tmp_path, f"{{device: /dev/sdb, {field}: {quoted}, size: 900GB, "
                                "type: hdd, role: osd, wipe: true}")  # fmt: skip
    problems = load_inventory(path).problems
    assert [(p.check_id, p.path[-1]) for p in problems] == [("LAB005", field)], problems


def test_one_identity_on_two_disks_is_refused(tmp_path: Path) -> None:
    text = REFERENCE.read_text()
    path = tmp_path / "inventory.yaml"
    path.write_text(
        text.replace(
            SDB, "{device: /dev/sdb, serial: Z1, size: 900GB, type: hdd, role: osd}", 1
        ).replace(
            "{device: /dev/sdc, size: 900GB, type: hdd, role: osd}",
            "{device: /dev/sdc, serial: Z1, size: 900GB, type: hdd, role: osd}",
            1,
        )
    )
    problems = load_inventory(path).problems
    assert [(p.check_id, p.path) for p in problems] == [
        ("LAB049", ("servers", 0, "disks", 2, "serial"))
    ]
    assert "gives /dev/sdb and /dev/sdc the one serial Z1" in problems[0].message
