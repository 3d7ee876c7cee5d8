"""The simulated lab's monitoring images, made from Debian's binaries under the
inventory's names: what each holds (read from the image description, nothing built),
and the refusal of an image whose tag is not the version of Debian's program. Needs
Debian's prometheus packages, as the sim does (scripts/setup.sh installs them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.render.monitoring import units
from labctl.sim import monitoring_images as m
from labctl.sim.images import Image
from tests.conftest import REFERENCE, ROOT


def paths(image: Image) -> dict[str, tuple[str, str]]:
    return {path.strip("/"): (kind, value) for path, kind, value in image.extra}


def test_each_image_is_named_as_the_inventory_says_with_the_program_at_upstreams_path() -> None:
    inv = require_inventory(REFERENCE)
    for program in units.PROGRAMS.values():
        image = m.program_image(inv, program)
        assert image.name == units.image(inv, program)
        assert str(image.binary) == program.host_binary
        # /bin/prometheus through the image's /bin -> usr/bin, as on Debian; upstream's
        # bird_exporter image has it at /app/bird_exporter, no link on the way.
        if program.unit == units.BIRD_EXPORTER:
            assert image.path_in_image == program.image_binary == "/app/bird_exporter"
        else:
            assert image.path_in_image == "/usr" + program.image_binary
        assert paths(image)["bin"] == ("link", "usr/bin")
        assert any(p.endswith("libc.so.6") for p in paths(image))


def test_the_ipmi_exporters_image_holds_freeipmi_and_alertmanagers_its_templates() -> None:
    inv = require_inventory(REFERENCE)
    ipmi = paths(m.program_image(inv, units.PROGRAMS[units.IPMI_EXPORTER]))
    for tool in ("bmc-info", "ipmi-chassis", "ipmi-sel", "ipmi-sensors", "ipmimonitoring"):
        assert f"usr/sbin/{tool}" in ipmi, tool
    assert any("libfreeipmi" in p for p in ipmi)
    alertmanager = paths(m.program_image(inv, units.PROGRAMS[units.ALERTMANAGER]))
    assert "usr/share/prometheus/alertmanager/default.tmpl" in alertmanager


def test_the_bird_exporters_version_is_read_from_debians_binary() -> None:
    """bird_exporter says ``Version: 1.4.1`` (no ``version`` word as the others): read,
    and upstream's image tag (no ``v``) agrees with it."""
    have = m.program_version("/usr/bin/prometheus-bird-exporter")
    assert have == "1.4.1"
    inv = require_inventory(REFERENCE)
    name = units.image(inv, units.PROGRAMS[units.BIRD_EXPORTER])
    assert m.tag_refusal(name, have, "/usr/bin/prometheus-bird-exporter") is None


def test_an_image_whose_tag_is_another_version_is_refused(tmp_path: Path) -> None:
    assert m.tag_refusal("quay.io/prometheus/prometheus:v2.42.0", "2.42.0", "x") is None
    assert m.tag_refusal("mirror.lab/prometheus:latest", "2.42.0", "x") is None
    why = m.tag_refusal("quay.io/prometheus/prometheus:v3.1.0", "2.42.0", "/usr/bin/prometheus")
    assert why is not None and "not 3.1.0" in why and "2.42.0" in why
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text().replace(
            "\ncluster:\n",
            "\ncluster:\n  monitoring:\n    images: {alertmanager: quay.io/x/am:v0.27.0}\n",
            1,
        )
    )
    with pytest.raises(LabctlError, match=r"cluster\.monitoring\.images\.alertmanager"):
        m.check(require_inventory(path))


def test_an_image_is_described_the_same_in_every_process() -> None:
    """ldd's answer is a set, whose order changes with each process's hash seed: the
    image's entries must not, or every `sim up` would write new archives and reload
    their store (a stamp of its inputs names the cache folder)."""
    import subprocess
    import sys

    code = (
        "from labctl.inventory import require_inventory;"
        "from labctl.sim import monitoring_images as m;"
        "from labctl.render.monitoring import units;"
        f"from pathlib import Path; inv = require_inventory(Path({str(REFERENCE)!r}));"
        "print([m.program_image(inv, p).extra for p in units.PROGRAMS.values()])"
    )
    said = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=ROOT)  # fmt: skip
        assert done.returncode == 0, done.stderr
        said.add(done.stdout)
    assert len(said) == 1
