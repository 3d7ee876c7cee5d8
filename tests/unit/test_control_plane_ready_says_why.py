"""kubernetes-control-plane-ready.sh says which of its conditions failed (on stderr), so
the control-plane wait that runs out names it: a kubelet that exited at start (it did,
on a 16-server simulated lab, out of inotify instances) read as 300 s of "not ready"."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

from labctl.data import shell

SCRIPT = shell.body("kubernetes-control-plane-ready")


def _ready(tmp_path: Path, active: bool, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the script with a ``systemctl`` on PATH that says the unit is (not) active."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(f"#!/bin/sh\nexit {0 if active else 3}\n")
    systemctl.chmod(systemctl.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return subprocess.run(
        ["sh", "-c", SCRIPT, "ready", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_a_stopped_kubelet_is_named(tmp_path: Path) -> None:
    done = _ready(tmp_path, False, "127.0.0.1", "6443", "-", "kubelet.service")
    assert done.returncode == 1
    assert done.stderr.strip() == "kubelet.service is not running (journalctl -u kubelet.service)"


def test_no_tls_on_the_port_is_said(tmp_path: Path) -> None:
    cert = tmp_path / "apiserver.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(cert),
            "-subj",
            "/CN=x",
            "-days",
            "1",
        ],
        capture_output=True,
        check=True,
    )
    port = str(_closed_port())
    done = _ready(tmp_path, True, "127.0.0.1", port, str(cert), "kubelet.service")
    assert done.returncode == 1
    assert done.stderr.strip() == f"nothing serves TLS on 127.0.0.1:{port} yet"


def test_no_readyz_is_said_without_a_certificate_to_compare(tmp_path: Path) -> None:
    port = str(_closed_port())
    done = _ready(tmp_path, True, "127.0.0.1", port, "-", "kube-apiserver.service")
    assert done.returncode == 1
    assert done.stderr.strip() == f"https://127.0.0.1:{port}/readyz does not answer ok yet"
