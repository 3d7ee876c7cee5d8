"""Property: a hostile inventory value is inert at every render, whatever validate let by.

Each test builds the typed model directly (the reference inventory with one
field replaced, so ``labctl validate`` never sees it), renders, and then either
the renderer refused with a ValueError, or the artefact, read back by the
format's own parser, has the same structure with the value where it belongs:
the shell runs exactly the commands and arguments meant (``sh`` itself, with
recording stand-ins for the programs), systemd units split into the same argv
and hold no extra directive (a strict reader of systemd's documented rules, and
``systemd-analyze verify``), ceph.conf reads back the same value with cephx on
(``ceph-conf``), BIRD accepts its configuration (``bird -p``), YAML round-trips.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from labctl.engine.layer import LayerContext
from labctl.etcd.restore import restore_argv
from labctl.inventory import require_inventory
from labctl.inventory.model import SecretRef
from labctl.render import boot, ceph, etcd, ignition, switch_frr, systemd
from labctl.render.bgp_common import resolving
from labctl.render.kubernetes import addons, kubelet
from labctl.render.systemd import env_text, unit_text
from labctl.sim.platform import SimPlatform
from labctl.sim.render import bird
from labctl.sim.render.kubernetes import shared_kernel
from tests.conftest import REFERENCE

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

INVENTORY = require_inventory(REFERENCE)
T = TypeVar("T")
D = TypeVar("D", bound="DataclassInstance")

# Values an attacker or a typo would put in an inventory: each is tried as it is
# and as part of a normal value; hypothesis adds any NUL-free text on top.
HOSTILE = [
    "$(touch /tmp/labctl-pwned)",
    "`id`",
    "${HOME}",
    "$HOME",
    "a;reboot",
    ";",
    "x && y",
    "a|b",
    "a\nExecStartPre=/bin/sh -c id",
    "v\nauth_cluster_required = none",
    'x"; import none; password "y',
    "'",
    '"',
    "\\",
    "x\\",
    "}",
    "cluster.local {\n}\n. {",
    "%n",
    "%%",
    "-rf",
    "--privileged",
    " lead",
    "trail ",
    "\t",
    "a\rb",
    "\x1b[2J",
    "ünïcødé",
    "a\u2028b",
    "#comment",
    "..",
    "../../etc/cron.d/x",
    "*",
    "a b",
]
hostile = st.one_of(
    st.sampled_from(HOSTILE),
    st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), st.sampled_from(HOSTILE)),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=12),
)
# A value a grammar would let by: half the examples, so renders go through as well.
plausible = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)
mixed = st.one_of(hostile, plausible)
# A path whose last part is hostile, as an absolute path must be to render at all.
hostile_path = st.builds(lambda a: f"/var/lib/{a}", st.one_of(hostile, plausible))
dns_names = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,2}", fullmatch=True
)
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLOW = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def rendered(fn: Callable[[], T]) -> T | None:
    """The render, or None when the renderer refused the value (which is inert too)."""
    try:
        done = fn()
    except ValueError:
        _event("refused")
        return None
    _event("rendered")
    return done


def _event(name: str) -> None:
    """How often a render went through, in ``--hypothesis-show-statistics``: a property
    whose every example is refused would check nothing."""
    if currently_in_test_context():
        event(name)


def patched(inventory: D, path: str, value: Any) -> D:
    """``inventory`` (or a dataclass in it) with the dotted field ``path`` set to ``value``,
    bypassing validate."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(inventory, **{head: value})
    inner = getattr(inventory, head)
    return dataclasses.replace(inventory, **{head: patched(inner, rest, value)})


# -- a strict reader of systemd unit files, from systemd.syntax(7) and systemd.service(5) --

C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
             "b": "\b", "f": "\f", "v": "\v", "s": " "}  # fmt: skip


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every setting, lines split on LF only, as systemd does."""
    section = ""
    out = []
    for raw in text.split("\n"):
        line = raw.strip(" \t\r")
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"a continuation line: {line!r}"
        if line.startswith("["):
            assert line.endswith("]"), line
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {line!r}"
        out.append((section, key.strip(), value.strip(" \t")))
    return out


def specifiers(value: str) -> str:
    """``%%`` to ``%``; any other specifier would be expanded, which is a failure here."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "%":
            assert value[i + 1 : i + 2] == "%", f"a live specifier in {value!r}"
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out)


def exec_argv(value: str) -> list[str]:
    """systemd's split of an Exec line: quotes, C escapes, ``\\;``, ``$$``; a live ``$VAR``,
    a lone ``;`` (a second command) or a prefix on the program fail the test."""
    value = specifiers(value)
    assert value[:1] not in "-@:+!|", f"a prefix on the program: {value!r}"
    words: list[str] = []
    i = 0
    while i < len(value):
        while i < len(value) and value[i] in " \t":
            i += 1
        if i == len(value):
            break
        raw_start, word, quote = i, [], ""
        while i < len(value):
            char = value[i]
            if not quote and char in " \t":
                break
            if not quote and char in "\"'":
                quote = char
            elif quote and char == quote:
                quote = ""
            elif char == "\\":
                nxt = value[i + 1]
                if nxt == "x":
                    word.append(chr(int(value[i + 2 : i + 4], 16)))
                    i += 2
                elif nxt == ";" and not quote:
                    word.append(";")
                else:
                    word.append(C_ESCAPES[nxt])
                i += 1
            else:
                word.append(char)
            i += 1
        assert not quote, f"unbalanced quoting in {value!r}"
        token = value[raw_start:i]
        assert token != ";", f"a second command in {value!r}"
        words.append(dollars("".join(word)))
    return words


def dollars(word: str) -> str:
    out, i = [], 0
    while i < len(word):
        if word[i] == "$":
            if word[i + 1 : i + 2] == "$":
                i += 1
            else:
                assert not re.match(r"[A-Za-z_{]", word[i + 1 : i + 2]), (
                    f"a live variable: {word!r}"
                )
        out.append(word[i])
        i += 1
    return "".join(out)


def keys(entries: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(section, key) for section, key, _ in entries]


def systemd_verify(tmp_path: Path, text: str) -> list[str]:
    """What systemd-analyze says of the unit, but for programs missing from this host."""
    unit = tmp_path / "labctl-quoting-probe.service"
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    ignored = ("is not executable", "has a bad unit file setting", "fatal error")
    return [
        line
        for line in done.stderr.splitlines()
        if line.strip() and not any(i in line for i in ignored)
    ]


# -- systemd: units and environment files --------------------------------------------


@FAST
@given(word=st.lists(hostile, min_size=1, max_size=4))
@example(word=["$(reboot)", ";", "%n", "a\nb"])
def test_exec_command_splits_back_into_the_argv(word: list[str]) -> None:
    argv = ["/usr/bin/prog", *word]
    line = rendered(lambda: unit_text({"Service": [("ExecStart", systemd.exec_command(argv))]}))
    if line is None:
        return
    [(_, key, value)] = unit_entries(line)
    assert key == "ExecStart"
    assert exec_argv(value) == argv


@FAST
@given(image=mixed, data_dir=hostile_path)
@example(image="quay.io/coreos/etcd:v3\nExecStartPre=/bin/sh -c id", data_dir="/var/lib/etcd")
@example(image="quay.io/coreos/etcd:v3", data_dir="/var/lib/$(reboot)")
def test_etcd_unit_holds_the_values_as_argv_words_and_no_extra_directive(
    image: str, data_dir: str
) -> None:
    base = INVENTORY.server("fohn")
    normal = etcd.unit(INVENTORY, base, "container")
    inventory = patched(
        INVENTORY,
        "cluster.etcd",
        dataclasses.replace(INVENTORY.cluster.etcd, image=image, data_dir=data_dir),
    )
    text = rendered(lambda: unit_text(etcd.unit(inventory, base, "container")))
    if text is None:
        return
    entries = unit_entries(text)
    assert keys(entries) == keys(unit_entries(unit_text(normal)))
    start = exec_argv(next(v for _, k, v in entries if k == "ExecStart"))
    assert f"{data_dir}:{data_dir}" in start
    assert start[-2:] == [etcd.image(inventory), "/usr/local/bin/etcd"]


@FAST
@given(image=mixed)
@example(image="quay.io/ceph/ceph:v16\nExecStartPost=/bin/sh -c id")
def test_ceph_units_hold_the_image_as_one_word(image: str) -> None:
    settings_ = dataclasses.replace(INVENTORY.cluster.ceph, image=image)  # type: ignore[type-var]
    inventory = patched(INVENTORY, "cluster.ceph", settings_)
    server = INVENTORY.server("fohn")
    normal = unit_text(ceph.daemon_unit(INVENTORY, server, "mon", "fohn", "mon", "container"))
    text = rendered(
        lambda: unit_text(ceph.daemon_unit(inventory, server, "mon", "fohn", "mon", "container"))
    )
    if text is None:
        return
    entries = unit_entries(text)
    assert keys(entries) == keys(unit_entries(normal))
    start = exec_argv(next(v for _, k, v in entries if k == "ExecStart"))
    assert start[start.index("--entrypoint") + 2] == ceph.image(inventory)


@FAST
@given(channel=mixed)
@example(channel="stable\nExecStartPre=/bin/sh -c id")
def test_the_installer_unit_passes_the_channel_as_one_argument(channel: str) -> None:
    server = INVENTORY.server("fohn")
    os_ = dataclasses.replace(server.os, channel=channel, distribution="flatcar")
    server = dataclasses.replace(server, os=os_)
    config = rendered(
        lambda: boot.installer_config(INVENTORY, server, version="3975.2.0", token="t")
    )
    if config is None:
        return
    text = config["systemd"]["units"][0]["contents"]
    start = exec_argv(next(v for _, k, v in unit_entries(text) if k == "ExecStart"))
    assert start[:3] == ["/opt/labctl-install", channel, "3975.2.0"]
    assert len(start) == 4 and start[3].startswith("http://")


def test_systemd_analyze_reads_hostile_exec_lines_without_complaint(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is part of the dev environment (scripts/setup.sh)")
    for value in HOSTILE:
        text = rendered(
            lambda v=value: unit_text(  # type: ignore[misc]
                {
                    "Unit": [("Description", "probe")],
                    "Service": [("ExecStart", systemd.exec_command(["/usr/bin/true", v, "x" + v]))],
                }
            )
        )
        if text is not None:
            assert systemd_verify(tmp_path, text) == [], (value, text)


def test_unit_values_that_no_line_can_hold_are_refused() -> None:
    for value in ["a\nExecStartPre=/bin/sh", "a\\", " a", "a\u2028b", "a\x85b"]:
        with pytest.raises(ValueError, match="Description"):
            unit_text({"Unit": [("Description", value)]})
    assert unit_text({"Unit": [("Description", "50% off")]}) == "[Unit]\nDescription=50%% off\n"
    assert unit_text({"Link": [("Name", "a%b")]}, specifiers=False) == "[Link]\nName=a%b\n"


@FAST
@given(data_dir=hostile_path)
@example(data_dir="/var/lib/x\\y")
def test_env_files_are_read_alike_by_systemd_and_docker_or_refused(data_dir: str) -> None:
    settings_ = dataclasses.replace(INVENTORY.cluster.etcd, data_dir=data_dir)
    inventory = patched(INVENTORY, "cluster.etcd", settings_)
    text = rendered(
        lambda: env_text(etcd.environment(inventory, inventory.server("fohn"), "sthlm-etcd"))
    )
    if text is None:
        return
    lines = text.split("\n")[:-1]
    assert len(lines) == len(etcd.environment(INVENTORY, INVENTORY.server("fohn"), "sthlm-etcd"))
    values = dict(line.partition("=")[::2] for line in lines)  # docker's reading
    # systemd's: it unquotes and unescapes; a value it would change is refused above.
    assert values["ETCD_DATA_DIR"] == data_dir
    assert not any(c in data_dir for c in "\"'\\ \t")


# -- shell: the etcd restore, run by sh with recording stand-ins ------------------------

STUB = """#!/bin/sh
printf '%s\\0' "${0##*/}" "$@" >> "$LABCTL_CALLS"; printf '\\n' >> "$LABCTL_CALLS"
case ${0##*/} in
  etcdctl) while [ $# -gt 0 ]; do [ "$1" = --data-dir ] && /bin/mkdir -p "$2"; shift; done ;;
  date) echo 20260101T000000Z ;;
  *) exec "/bin/${0##*/}" "$@" ;;
esac
"""


def run_restore(tmp_path: Path, data_dir: str) -> list[list[str]]:
    """The restore script as sh runs it on a node twice (the second time the data
    directory exists and is moved aside), under a node root in tmp_path; the calls
    of every program, in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("etcdctl", "date", "mv", "chmod", "rm"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    root = tmp_path / "node"
    (root / "srv").mkdir(parents=True, exist_ok=True)
    settings_ = dataclasses.replace(INVENTORY.cluster.etcd, data_dir=data_dir)
    inventory = patched(INVENTORY, "cluster.etcd", settings_)
    ctx = LayerContext(
        inventory, REFERENCE, tmp_path / "state", node_root=str(root),
        platform=SimPlatform(etcd="host"),
    )  # fmt: skip
    node_dir = ctx.on_node("fohn", data_dir)
    argv = restore_argv(ctx, "fohn", ctx.on_node("fohn", "/snap.db"), node_dir, "sthlm-etcd-1")
    calls = tmp_path / "calls"
    calls.write_bytes(b"")
    env = {"PATH": str(bin_dir), "LABCTL_CALLS": str(calls), "HOME": str(tmp_path)}
    for _ in range(2):
        done = subprocess.run(
            ["/bin/sh", *argv[1:]], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
    return [line.rstrip("\0").split("\0") for line in calls.read_text().splitlines() if line]


@SLOW
@given(
    name=st.one_of(hostile, plausible).filter(
        lambda s: "/" not in s and s not in ("", ".", "..") and s.isprintable() and s[0] != "-"
    )
)
@example(name="$(touch pwned)")
@example(name="`touch pwned`")
@example(name="a;touch pwned")
def test_the_restore_runs_exactly_its_commands_whatever_the_data_dir(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    # Inside the node root, on a file system sh can create it on.
    tmp_path = tmp_path_factory.mktemp("restore")
    data_dir = f"/srv/{name}"
    calls = run_restore(tmp_path, data_dir)
    node_dir = f"{tmp_path}/node{data_dir}"
    programs = [call[0] for call in calls]
    assert programs == ["etcdctl", "chmod", "rm", "date", "mv", "etcdctl", "chmod", "rm"]
    assert calls[4][1:] == [node_dir, f"{node_dir}.before-restore-20260101T000000Z"]
    assert calls[0][calls[0].index("--data-dir") + 1] == node_dir
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()
    assert (Path(node_dir) / ".labctl-cluster").read_text() == "sthlm-etcd-1\n"


# -- ceph.conf, read back by Ceph's own parser ----------------------------------------


def ceph_lookup(conf: Path, key: str, section: str = "global") -> str:
    done = subprocess.run(
        ["ceph-conf", "-c", str(conf), "-s", section, "--lookup", key],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.rstrip("\n")


@SLOW
@given(value=mixed)
@example(value="1\nauth_cluster_required = none")
@example(value='say "hi" \\ bye')
def test_ceph_conf_reads_back_the_same_value_with_cephx_on(tmp_path: Path, value: str) -> None:
    if shutil.which("ceph-conf") is None:
        pytest.fail("ceph-conf is part of the dev environment (scripts/setup.sh)")
    assume("$" not in value)  # Ceph's own metavariables ($cluster, $id): a feature, kept
    settings_ = dataclasses.replace(  # type: ignore[type-var]
        INVENTORY.cluster.ceph, config=(("labctl_probe", value),)
    )
    text = rendered(lambda: ceph.conf_text(patched(INVENTORY, "cluster.ceph", settings_)))
    if text is None:
        return
    conf = tmp_path / "ceph.conf"
    conf.write_text(text)
    assert ceph_lookup(conf, "labctl_probe") == value
    for key in ("auth_cluster_required", "auth_service_required", "auth_client_required"):
        assert ceph_lookup(conf, key) == "cephx"


def test_ceph_conf_refuses_keys_that_are_not_option_names() -> None:
    for key in ["a\nauth_cluster_required", "a = b", "[global]", "a;b", ""]:
        settings_ = dataclasses.replace(  # type: ignore[type-var]
            INVENTORY.cluster.ceph, config=((key, "1"),)
        )
        with pytest.raises(ValueError, match="option name"):
            ceph.conf_text(patched(INVENTORY, "cluster.ceph", settings_))


# -- Corefile, YAML, iPXE, dnsmasq, BIRD ----------------------------------------------


@FAST
@given(domain=st.one_of(hostile, dns_names))
@example(domain="cluster.local {\n}\nevil.com {\n forward . 6.6.6.6\n}\n. {")
def test_the_corefile_keeps_its_blocks_and_yaml_round_trips(domain: str) -> None:
    k = dataclasses.replace(INVENTORY.cluster.kubernetes, cluster_domain=domain)
    inventory = patched(INVENTORY, "cluster.kubernetes", k)
    docs = rendered(lambda: addons.coredns(inventory))
    if docs is None:
        return
    corefile = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["Corefile"]
    normal = next(d for d in addons.coredns(INVENTORY) if d["kind"] == "ConfigMap")
    # The same words in the same blocks: the domain is one word, nothing more.
    assert corefile == normal["data"]["Corefile"].replace(" cluster.local ", f" {domain} ")
    assert len(corefile.split()) == len(normal["data"]["Corefile"].split())
    assert corefile.count("{") == corefile.count("}") == normal["data"]["Corefile"].count("{")
    config = kubelet.configuration(inventory, inventory.server("fohn"), shared_kernel("host"))
    assert yaml.safe_load(yaml.safe_dump(config)) == config


@FAST
@given(device=st.one_of(hostile, hostile_path))
@example(device="/dev/sda ${net0/mac} || shell")
def test_ipxe_kernel_words_are_plain_or_refused(device: str) -> None:
    server = INVENTORY.server("fohn")
    disks = tuple(
        dataclasses.replace(d, device=device) if d.role == "os" else d for d in server.disks
    )
    server = dataclasses.replace(server, disks=disks)
    script = rendered(lambda: boot.ipxe_script(INVENTORY, server))
    if script is None:
        return
    kernel = next(line for line in script.split("\n") if line.startswith("kernel "))
    assert shlex.split(kernel)[2:] == boot.kernel_args(INVENTORY, server)
    assert f"labctl.disk={device}" in kernel.split(" ")
    assert "$" not in kernel


@FAST
@given(name=hostile)
@example(name="x/../../../cron.d/labctl")
def test_a_nic_name_makes_one_ignition_file_or_is_refused(name: str) -> None:
    server = INVENTORY.server("fohn")
    nics = (dataclasses.replace(server.nics[0], name=name), *server.nics[1:])
    server = dataclasses.replace(server, nics=nics)
    files = rendered(lambda: ignition.network_files(INVENTORY, server))
    if files is None:
        return
    for file in files:
        assert os.path.normpath(file["path"]) == file["path"]
        assert file["path"].startswith(("/etc/systemd/network/", "/etc/NetworkManager/"))


@SLOW
@given(password=mixed)
@example(password='x"; import none; password "y')
def test_bird_accepts_the_config_with_one_password_per_session(
    tmp_path: Path, password: str
) -> None:
    binary = Path("/opt/labctl/bird-1.6.8/usr/sbin/bird")
    if not binary.exists():
        pytest.fail("BIRD 1.6.8 is unpacked by scripts/setup.sh")
    calico = INVENTORY.cluster.calico
    calico = dataclasses.replace(calico, mesh_password=SecretRef(literal="ref"))
    inventory = patched(INVENTORY, "cluster.calico", calico)
    server = inventory.server("fohn")
    normal = bird.config(inventory, server, resolving(lambda ref: "secret"))
    text = rendered(lambda: bird.config(inventory, server, resolving(lambda ref: password)))
    if text is None:
        return
    assert text.count("password ") == normal.count("password ")
    assert len(text.split("\n")) == len(normal.split("\n"))
    conf = tmp_path / "bird.cfg"
    conf.write_text(text)
    done = subprocess.run(
        [str(binary), "-p", "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


def test_line_based_configs_refuse_a_line_break_without_showing_it() -> None:
    server = INVENTORY.server("fohn")
    calico = dataclasses.replace(INVENTORY.cluster.calico, mesh_password=SecretRef(literal="r"))
    inventory = patched(INVENTORY, "cluster.calico", calico)
    with pytest.raises(ValueError) as refused:
        bird.config(inventory, server, resolving(lambda ref: 's3cr3t"\nprotocol x'))
    assert "s3cr3t" not in str(refused.value)
    boot_ = dataclasses.replace(INVENTORY.lab.boot, interface="eth0\ndhcp-script=/tmp/x")  # type: ignore[type-var]
    lab = dataclasses.replace(INVENTORY.lab, boot=boot_)
    paths = boot.DnsmasqPaths("/t", "/l", "/g", "/p")
    with pytest.raises(ValueError, match="interface"):
        boot.dnsmasq_conf(dataclasses.replace(INVENTORY, lab=lab), paths)


def test_a_refused_render_is_a_sentence_and_writes_nothing(tmp_path: Path) -> None:
    from tests.labctl_process import run_labctl

    data = yaml.safe_load(REFERENCE.read_text())
    data["cluster"]["etcd"]["data_dir"] = "/var/lib/etcd\nETCD_UNSAFE_NO_FSYNC=true"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data))
    state = tmp_path / "state"
    done = run_labctl(  # asserts no traceback
        "bootstrap", "--only", "etcd", "--dry-run", "-i", str(inventory), "--state-dir", str(state)
    )
    # validate's grammar stops it before any render (the renders' own refusal is
    # proven above, bypassing validate); either way one sentence and nothing written.
    assert done.returncode == 1, done.stderr
    assert "cluster.etcd.data_dir" in done.stderr
    assert [p.name for p in state.rglob("*") if p.is_file()] in ([], ["lock"])


@SLOW
@given(values=st.one_of(st.tuples(mixed, plausible), st.tuples(plausible, mixed)))
@example(values=("kek-core\nno router bgp 64512", "pw"))
@example(values=("kek-core", "pw\n neighbor 6.6.6.6 remote-as 1"))
def test_vtysh_accepts_the_frr_config_with_the_values_in_their_place(
    tmp_path: Path, values: tuple[str, str]
) -> None:
    name, password = values
    if shutil.which("vtysh") is None:
        pytest.fail("FRR's vtysh is part of the dev environment (scripts/setup.sh)")
    kek = next(s for s in INVENTORY.switches if s.name == "kek-core")
    switch = dataclasses.replace(kek, name=name)
    peers = tuple(
        dataclasses.replace(p, switch=name, password=SecretRef(literal="ref"))
        if p.switch == "kek-core"
        else p
        for p in INVENTORY.cluster.calico.peers
    )
    calico = dataclasses.replace(INVENTORY.cluster.calico, peers=peers)
    inventory = patched(INVENTORY, "cluster.calico", calico)
    switches = tuple(switch if s is kek else s for s in INVENTORY.switches)
    inventory = dataclasses.replace(inventory, switches=switches)
    text = rendered(lambda: switch_frr.config(inventory, switch, resolving(lambda ref: password)))
    if text is None:
        return
    lines = text.split("\n")
    assert f"hostname {name}" in lines
    assert sum(line.endswith(f" password {password}") for line in lines) == 1
    conf = tmp_path / "frr.conf"
    conf.write_text(text)
    done = subprocess.run(
        ["vtysh", "--dryrun", "-f", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


# `osd pool ls detail`: 'rbdx' as the inventory says, 'rbd.' with size 2, no application.
DETAIL = (
    "pool 1 'rbdx' replicated size 3 min_size 2 crush_rule 0 object_hash rjenkins pg_num 32"
    " pgp_num 32 autoscale_mode on last_change 9 flags hashpspool stripe_width 0"
    " application rbd\n"
    "pool 2 'rbd.' replicated size 2 min_size 1 crush_rule 0 object_hash rjenkins pg_num 32"
    " pgp_num 32 autoscale_mode on last_change 9 flags hashpspool stripe_width 0\n"
)


@pytest.mark.parametrize(("script", "args", "listing"), [
    ("POOLS", ["rbd.", "auto", "3", "rbd", "no"], DETAIL),
    ("FILESYSTEM", ["c.fs", "meta", "data"], '[{"name":"cxfs"}]'),
])  # fmt: skip
def test_ceph_scripts_match_names_literally_not_as_patterns(
    tmp_path: Path, script: str, args: list[str], listing: str
) -> None:
    """A pool or file system name is compared as text: 'rbd.' is not the pool 'rbdx'."""
    from labctl.layers import ceph as layer

    stub = tmp_path / "ceph"
    stub.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {tmp_path}/calls\n'
        f'case "$*" in "osd pool ls detail"|"fs ls -f json") printf %s {shlex.quote(listing)} ;;'
        " esac\n"
    )
    stub.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", getattr(layer, script), "labctl-probe", str(stub), *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    if script == "POOLS":  # the pool's own line was read, not rbdx's: it exists
        assert calls == [
            "osd pool ls detail",
            "osd pool set rbd. size 3",
            "osd pool application enable rbd. rbd",
        ]
    else:
        assert "fs new c.fs meta data" in calls


@pytest.mark.parametrize("data_dir", ["-rf", "var/lib/etcd", "/var/lib/../../etc", "/a\nb"])
def test_an_etcd_data_dir_that_is_not_an_absolute_path_is_refused(data_dir: str) -> None:
    """It reaches mkdir, chmod and mv on every member: '-rf' would be an option there."""
    settings_ = dataclasses.replace(INVENTORY.cluster.etcd, data_dir=data_dir)
    inventory = patched(INVENTORY, "cluster.etcd", settings_)
    with pytest.raises(ValueError, match="data_dir"):
        etcd.member_files(inventory, inventory.server("fohn"), "container", "sthlm-etcd")


@pytest.mark.parametrize("device", ["-f", "/dev/../etc/passwd", "dev/sdb"])
def test_an_osd_device_that_is_not_an_absolute_path_is_refused(device: str) -> None:
    server = INVENTORY.with_role("ceph-osd")[0]
    disks = tuple(
        dataclasses.replace(d, device=device) if d.role == "osd" else d for d in server.disks
    )
    servers = tuple(
        dataclasses.replace(s, disks=disks) if s is server else s for s in INVENTORY.servers
    )
    with pytest.raises(ValueError, match="OSD device"):
        ceph.osds(dataclasses.replace(INVENTORY, servers=servers))


def test_a_time_server_is_one_word_of_the_ntp_list() -> None:
    lab = dataclasses.replace(INVENTORY.lab, time_servers=("ntp.example 10.0.0.1",))
    with pytest.raises(ValueError, match="time server"):
        ignition.timesyncd_conf(dataclasses.replace(INVENTORY, lab=lab))


def test_a_nic_name_with_a_backslash_is_refused_for_networkmanager() -> None:
    server = INVENTORY.server("fohn")
    nic = dataclasses.replace(server.nics[0], name="eth\\s0")
    with pytest.raises(ValueError, match="NetworkManager"):
        ignition.nm_keyfile(INVENTORY, server, nic)
