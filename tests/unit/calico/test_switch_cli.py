"""`labctl switch config` prints the golden renders; mistakes are one sentence."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.errors import UsageError
from tests.conftest import GOLDEN, REFERENCE

runner = CliRunner()


def test_config_prints_each_switch_in_its_platform() -> None:
    for switch, golden in (("kek-core", "switch-kek-core.frr"), ("tor", "switch-tor.ios")):
        done = runner.invoke(app, ["switch", "config", switch, "-i", str(REFERENCE)])
        assert done.exit_code == 0, done.output
        assert done.stdout == (GOLDEN / golden).read_text()


def test_platform_override_renders_frr_for_the_arista() -> None:
    done = runner.invoke(
        app, ["switch", "config", "astrid", "-i", str(REFERENCE), "--platform", "frr"]
    )
    assert done.exit_code == 0 and done.stdout == (GOLDEN / "switch-astrid.frr").read_text()


def test_unknown_switch_and_missing_platform_are_sentences(tmp_path: Path) -> None:
    # The CLI's entry point prints a UsageError as one line and exits 2.
    done = runner.invoke(app, ["switch", "config", "core9", "-i", str(REFERENCE)])
    assert isinstance(done.exception, UsageError)
    assert "no switch named 'core9'" in str(done.exception)
    assert "(switches: kek-core, astrid, tor)" in str(done.exception)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(REFERENCE.read_text().replace("    platform: ios\n", ""))
    done = runner.invoke(app, ["switch", "config", "tor", "-i", str(inventory)])
    assert isinstance(done.exception, UsageError)
    assert "switch tor has no platform (frr, eos or ios)" in str(done.exception)


def test_bgp_resources_prints_the_golden_resources_and_json() -> None:
    import json

    import yaml

    done = runner.invoke(app, ["bgp", "resources", "-i", str(REFERENCE)])
    assert done.exit_code == 0, done.output
    assert done.stdout == (GOLDEN / "calico-resources.yaml").read_text()
    as_json = runner.invoke(app, ["bgp", "resources", "-i", str(REFERENCE), "-o", "json"])
    assert json.loads(as_json.stdout) == list(yaml.safe_load_all(done.stdout))


def test_diff_lines_show_where_a_password_comes_from_never_a_value() -> None:
    from labctl.calico.config_diff import NOT_SHOWN, diff, hide

    where = "<secret from environment variable KEK>"
    rendered = "router bgp 64513\n neighbor CALICO password s3cret-A\n"
    assert diff(rendered, rendered, "frr", "kek-core", {"s3cret-A": where}) == []
    lines = diff(rendered, rendered.replace("s3cret-A", "B-other"), "frr", "kek-core",
                 {"s3cret-A": where})  # fmt: skip
    assert f"- neighbor CALICO password {where}" in lines
    assert f"+ neighbor CALICO password {NOT_SHOWN}" in lines
    assert not any("s3cret-A" in line or "B-other" in line for line in lines)
    # EOS prints its keys encrypted (type 7): not shown either; a masked render stays as it is.
    assert hide("   neighbor CALICO password 7 0x1f2e", {}) == (
        f"   neighbor CALICO password 7 {NOT_SHOWN}"
    )
    assert hide(f" neighbor CALICO password {where}", {}) == f" neighbor CALICO password {where}"


def test_switch_config_prints_where_the_password_comes_from(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        REFERENCE.read_text().replace(
            "- {switch: kek-core, address: 31.31.164.210, nodes: all}",
            "- {switch: kek-core, address: 31.31.164.210, nodes: all,"
            " password: {env: LABCTL_TEST_KEK_KEY}}",
        )
    )
    done = runner.invoke(
        app, ["switch", "config", "kek-core", "-i", str(inventory)],
        env={"LABCTL_TEST_KEK_KEY": "kek-md5-Zq7v"},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert " neighbor CALICO password <secret from environment variable LABCTL_TEST_KEK_KEY>\n" in (
        done.stdout
    )
    assert "kek-md5-Zq7v" not in done.output
