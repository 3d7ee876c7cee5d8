"""The simulated lab's inotify limits: raised for its node count, put back at down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.sim import host_limits


def _proc(tmp_path: Path, instances: int, watches: int) -> Path:
    (tmp_path / "max_user_instances").write_text(f"{instances}\n")
    (tmp_path / "max_user_watches").write_text(f"{watches}\n")
    return tmp_path


def _read(proc: Path, name: str) -> int:
    return int((proc / name).read_text())


def test_sixteen_nodes_get_more_than_the_kernels_128_and_down_puts_it_back(
    tmp_path: Path,
) -> None:
    # 16 kubelets alone took 90 of the default 128 instances (measured).
    proc = _proc(tmp_path, 128, 524288)
    record: dict[str, Any] = {}
    said = host_limits.raise_for(17, record, proc)
    assert _read(proc, "max_user_instances") == 128 + 16 * 17
    assert said == ["fs.inotify.max_user_instances 128 -> 400"]
    assert _read(proc, "max_user_watches") == 524288  # already enough: not touched
    host_limits.restore(record, proc)
    assert _read(proc, "max_user_instances") == 128
    assert _read(proc, "max_user_watches") == 524288


def test_a_higher_limit_is_never_lowered(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 8192, 10**6)
    record: dict[str, Any] = {}
    assert host_limits.raise_for(20, record, proc) == []
    host_limits.restore(record, proc)
    assert _read(proc, "max_user_instances") == 8192


def test_a_lab_that_grows_keeps_the_value_found_before_its_first_up(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 128, 8192)
    record: dict[str, Any] = {}
    host_limits.raise_for(4, record, proc)
    host_limits.raise_for(12, record, proc)
    assert _read(proc, "max_user_instances") == 128 + 16 * 12
    host_limits.restore(record, proc)
    assert (_read(proc, "max_user_instances"), _read(proc, "max_user_watches")) == (128, 8192)


def test_a_value_changed_by_someone_else_since_is_left_alone(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 128, 8192)
    record: dict[str, Any] = {}
    host_limits.raise_for(3, record, proc)
    (proc / "max_user_instances").write_text("1024\n")
    host_limits.restore(record, proc)
    assert _read(proc, "max_user_instances") == 1024
    assert _read(proc, "max_user_watches") == 8192
