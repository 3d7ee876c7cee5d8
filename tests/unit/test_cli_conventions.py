"""The CLI's conventions (issue 27 items 4 and 5): every wrong argument or destination gets
a sentence and exit 1 or 2, never a traceback; `--out`/`--write` never create
directories nor replace a device; `validate` takes -i like every command; flags show
no value in help; tables piped to a file keep every value whole."""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.cli.main import app
from labctl.errors import LabctlError
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl


def _destinations(tmp: Path) -> dict[str, Path]:
    """Each wrong kind of --out/--write destination."""
    (tmp / "a-file").write_text("x")
    (tmp / "full").symlink_to("/dev/full")  # a full disk (ENOSPC), never /dev/full itself
    return {
        "directory": tmp,
        "missing parent": tmp / "no" / "such" / "dir" / "out",
        "parent is a file": tmp / "a-file" / "out",
        "full disk": tmp / "full",
    }


ENV = {"LABCTL_CA_PASSPHRASE": "unit-ca-passphrase"}


@pytest.fixture(scope="module")
def minted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference inventory beside a PKI store, so `kubeconfig` gets as far as writing."""
    lab = tmp_path_factory.mktemp("minted")
    shutil.copy(REFERENCE, lab / "inventory.yaml")
    done = run_labctl("pki", "mint", "--backend", "builtin", cwd=lab, env=ENV)
    assert done.returncode == 0, done.stderr
    return lab / "inventory.yaml"


@pytest.mark.parametrize("kind", ["directory", "missing parent", "parent is a file", "full disk"])
@pytest.mark.parametrize(
    "command", [["inventory", "export", "hosts", "--out"], ["kubeconfig", "--write"]]
)
def test_a_destination_that_cannot_be_written_gets_a_sentence(
    tmp_path: Path, kind: str, command: list[str], minted: Path
) -> None:
    target = _destinations(tmp_path)[kind]
    done = run_labctl(*command, str(target), "-i", str(minted), env=ENV)  # no traceback
    assert done.returncode in (1, 2), done.stderr
    assert done.stderr.startswith("labctl: "), done.stderr
    assert str(target) in done.stderr
    assert not (tmp_path / "no").exists(), "a missing parent was created"
    assert (tmp_path / "full").is_symlink(), "the device link was replaced by a file"
    assert os.path.realpath(tmp_path / "full") == "/dev/full"


def test_export_to_a_full_disk_says_so(tmp_path: Path) -> None:
    target = _destinations(tmp_path)["full disk"]
    done = run_labctl("inventory", "export", "hosts", "-i", str(REFERENCE), "--out", str(target))
    assert done.returncode == 1
    assert "No space left on device" in done.stderr


def test_export_writes_through_a_device(tmp_path: Path) -> None:
    # Through a link of our own: were it replaced (as today's main does), /dev is untouched.
    (tmp_path / "stdout").symlink_to("/dev/stdout")
    target = str(tmp_path / "stdout")
    done = run_labctl("inventory", "export", "hosts", "-i", str(REFERENCE), "--out", target)
    assert done.returncode == 0, done.stderr
    assert "fohn" in done.stdout


def test_validate_takes_the_inventory_option_like_every_command() -> None:
    bad = REFERENCE.parent / "tests/fixtures/bad/mac-duplicate.yaml"
    assert run_labctl("validate", "-i", str(REFERENCE)).returncode == 0
    assert run_labctl("validate", "--inventory", str(bad)).returncode == 1
    by_env = run_labctl("validate", cwd=Path("/"), env={"LABCTL_INVENTORY": str(bad)})
    assert by_env.returncode == 1 and "LAB016" in by_env.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--format", "nope", str(REFERENCE)],
        ["inventory", "show", "-i", str(REFERENCE), "-o", "nope"],
        ["inventory", "export", "nope", "-i", str(REFERENCE)],
        ["kubeconfig", "-i", str(REFERENCE), "--user", "root"],
        ["init", "--output", "-", "--servers", "0"],
        ["inventory", "export", "hosts", "-i", str(REFERENCE), "--out", "/"],
    ],
    ids=["format", "output", "export-format", "kubeconfig-user", "init-servers", "out-dir"],
)
def test_a_usage_error_exits_2(args: list[str]) -> None:
    done = run_labctl(*args)
    assert done.returncode == 2, done.stderr


@pytest.mark.parametrize("command", [["validate"], ["etcd", "restore"], ["init"], ["power", "on"]])
def test_flags_show_no_value_in_help(command: list[str]) -> None:
    done = run_labctl(*command, "--help")
    assert done.returncode == 0
    assert "<bool>" not in done.stdout


def test_inventory_show_in_a_pipe_prints_every_value_whole() -> None:
    done = run_labctl("inventory", "show", "-i", str(REFERENCE), env={"COLUMNS": None})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    data = yaml.safe_load(REFERENCE.read_text())
    values = [data["lab"]["name"], data["lab"]["domain"]]
    for server in data["servers"]:
        hw = server["hardware"]
        values += [server["name"], hw["model"], hw["cpus"]["model"], hw["memory"]]
        values += [server["bmc"]["address"], server["os"]["channel"], *server["roles"]]
        values += [a["address"] for nic in server["nics"] for a in nic["addresses"]][:1]
    for network in data["networks"]:
        values += [network["name"], network["cidr"], network.get("gateway", network["name"])]
    for switch in data["switches"]:
        values += [switch["name"], switch["model"], switch["management"]["address"]]
    for pdu in data["pdus"]:
        values += [pdu["name"], pdu["model"], pdu["address"]]
    cells = {c.strip() for line in done.stdout.splitlines() for c in re.split("[│┃]", line)}
    words = " ".join(cells)
    missing = [v for v in values if str(v) not in words]
    assert missing == []


def test_a_cell_too_wide_for_the_terminal_wraps_and_is_never_cut() -> None:
    from labctl.cli.tables import Console, Table

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=30, color_system=None)
    table = Table(title="t")
    table.add_column("address")
    table.add_column("model")
    table.add_row("31.31.164.220", "Edge-Core AS5712-54X-Gröẞe-Ünïcödé-Wide")
    console.print(table)
    text = out.getvalue()
    assert "…" not in text
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    column = ["".join(row[i].strip() for row in rows) for i in (1, 2)]
    assert column == ["31.31.164.220", "Edge-CoreAS5712-54X-Gröẞe-Ünïcödé-Wide"]


# Every command that needs no lab, with an argument slot for a bad value.
NO_LAB = [
    ["validate", "{}"],
    ["validate", "-i", "{}"],
    ["validate", "--format", "{}", str(REFERENCE)],
    ["inventory", "show", "-i", "{}"],
    ["inventory", "show", "-i", str(REFERENCE), "-o", "{}"],
    ["inventory", "export", "{}", "-i", str(REFERENCE)],
    ["inventory", "export", "hosts", "-i", "{}"],
    ["inventory", "export", "hosts", "-i", str(REFERENCE), "--out", "{}"],
    ["kubeconfig", "-i", "{}"],
    ["kubeconfig", "-i", str(REFERENCE), "--write", "{}"],
    ["kubeconfig", "-i", str(REFERENCE), "--user", "{}"],
    ["pki", "list", "-i", "{}"],
    ["plan", "-i", "{}"],
    ["plan", "-i", str(REFERENCE), "--state-dir", "{}"],
    ["init", "--output", "{}"],
    ["init", "--output", "-", "--servers", "{}"],
    ["init", "--output", "-", "--public-cidr", "{}"],
    ["init", "--output", "-", "--server", "{}"],
    ["schema", "{}"],
    ["completion", "{}"],
    ["{}"],
]


def _bad_values(tmp: Path) -> st.SearchStrategy[str]:
    (tmp / "empty.yaml").write_text("")
    (tmp / "latin1.yaml").write_bytes(b"version: 1\nlab: {name: f\xf6hn}\n")
    (tmp / "list.yaml").write_text("- 1\n- 2\n")
    (tmp / "broken.yaml").write_text("lab: [\n")
    # Devices only through links in tmp: a command that replaced its --out (as main did)
    # must not be able to replace a device of the machine's.
    files = [str(p) for p in _destinations(tmp).values()]
    files += [str(tmp / n) for n in ("empty.yaml", "latin1.yaml", "list.yaml", "broken.yaml")]
    return st.one_of(
        st.sampled_from([*files, "", "-", "--", "-1", "0", "999999999", "/"]),
        st.text(max_size=12).filter(lambda t: "\x00" not in t),
    )


@contextlib.contextmanager
def _memory_bound(extra: int = 2 * 2**30) -> Iterator[None]:
    """At most ``extra`` more bytes of address space: a command that would read or build
    without bound (`validate` of a link to /dev/full, `init --servers 999999999` on
    today's main) fails here with MemoryError instead of taking the shared machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _invoke(args: list[str]) -> tuple[int, str]:
    """labctl's entry point in this process: what `run()` does, with the exit code."""
    out = io.StringIO()
    with _memory_bound(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            app(args=args, prog_name="labctl", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code
            return (code if isinstance(code, int) else 1), out.getvalue()
        except LabctlError as exc:
            return exc.exit_code, out.getvalue()
    return 0, out.getvalue()


def test_no_command_shows_a_traceback_for_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"  # what `init --output VALUE` writes lands here
    work.mkdir()
    monkeypatch.chdir(work)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
    @given(template=st.sampled_from(NO_LAB), value=_bad_values(tmp_path))
    def bad_arguments(template: list[str], value: str) -> None:
        args = [value if part == "{}" else part for part in template]
        code, said = _invoke(args)  # any other exception fails: it would be a traceback
        assert "Traceback" not in said
        if code == 0:
            # Only a value that happens to be right may succeed (`init --servers 3`).
            return
        assert code in (1, 2), (args, code, said)

    bad_arguments()
