"""Minting with the real `cfssl` binary (1.2) as a subprocess.

We read cfssl's JSON answer ourselves instead of piping into cfssljson: in a pipe a
cfssl failure turns into an empty/garbled cfssljson run and the real error is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from labctl.errors import DriverError
from labctl.pki.backend import CaMaterial
from labctl.pki.cfssl_json import csr_json, dumps, go_duration, signing_profile
from labctl.pki.specs import CertSpec


class CfsslBackend:
    name = "cfssl"

    def __init__(self, binary: str = "cfssl", timeout: float = 60.0) -> None:
        self.binary = binary
        self.timeout = timeout

    def _run(self, args: list[str], cwd: str, pass_fds: tuple[int, ...] = ()) -> dict[str, str]:
        try:
            proc = subprocess.run(
                [self.binary, *args],
                cwd=cwd,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                pass_fds=pass_fds,
            )
        except FileNotFoundError as e:
            from labctl.programs import missing

            why = "the cfssl PKI backend runs it"
            if self.binary != "cfssl":  # a path the caller chose: say which one
                raise DriverError(f"cfssl binary {self.binary!r} not found ({why})") from e
            raise DriverError(missing("cfssl", why)) from e
        except subprocess.TimeoutExpired as e:
            raise DriverError(f"cfssl {args[0]} {args[1]} timed out after {self.timeout}s") from e
        stderr = proc.stderr.decode(errors="replace").strip()
        if proc.returncode != 0:
            raise DriverError(f"cfssl {' '.join(args[:2])} failed ({proc.returncode}): {stderr}")
        try:
            out = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise DriverError(f"cfssl printed no JSON: {stderr}") from e
        if not isinstance(out, dict) or not out.get("cert") or not out.get("key"):
            raise DriverError(f"cfssl answer lacks cert/key: {stderr}")
        return {str(k): str(v) for k, v in out.items()}

    def mint_ca(self, spec: CertSpec) -> tuple[bytes, bytes]:
        with tempfile.TemporaryDirectory(prefix="labctl-cfssl-") as d:
            Path(d, "csr.json").write_text(dumps(csr_json(spec)))
            out = self._run(["gencert", "-initca", "csr.json"], d)
        return out["cert"].encode(), out["key"].encode()

    def mint_cert(self, spec: CertSpec, ca: CaMaterial) -> tuple[bytes, bytes]:
        # One profile per cert with this spec's own expiry: cfssl takes expiry from the
        # profile, not from the CSR.
        config = {
            "signing": {
                "default": {"expiry": go_duration(spec.validity_days)},
                "profiles": {spec.profile: signing_profile(spec.profile, spec.validity_days)},
            }
        }
        with (
            tempfile.TemporaryDirectory(prefix="labctl-cfssl-") as d,
            _secret_pipe(ca.key_pem) as key_fd,
        ):
            # The plaintext CA key reaches cfssl through a pipe it opens as /dev/fd/N:
            # it is never written to disk, not even to a private temp file.
            Path(d, "ca.pem").write_bytes(ca.cert_pem)
            Path(d, "config.json").write_text(json.dumps(config))
            Path(d, "csr.json").write_text(dumps(csr_json(spec)))
            args = [
                "gencert",
                "-ca",
                "ca.pem",
                "-ca-key",
                f"/dev/fd/{key_fd}",
                "-config",
                "config.json",
                "-profile",
                spec.profile,
            ]
            # -hostname *replaces* the CSR's hosts; pass it only with the full list so
            # an empty one never wipes SANs (and client certs get none).
            if spec.hosts:
                args.append("-hostname=" + ",".join(spec.hosts))
            out = self._run([*args, "csr.json"], d, pass_fds=(key_fd,))
        return out["cert"].encode(), out["key"].encode()


@contextlib.contextmanager
def _secret_pipe(data: bytes) -> Iterator[int]:
    """The read end of a pipe already holding ``data`` (closed on exit)."""
    read_fd, write_fd = os.pipe()
    try:
        # A PEM key is a few KiB; the pipe holds 64 KiB, so this write cannot block.
        if len(data) >= 65536:
            raise DriverError("CA key too large to hand to cfssl through a pipe")
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        os.close(write_fd)
        write_fd = -1
        yield read_fd
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
