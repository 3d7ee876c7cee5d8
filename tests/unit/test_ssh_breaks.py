"""paramiko's own exceptions for a connection that breaks mid-command become driver errors.

The integration test cuts a real sshd's session, but which exception paramiko
raises depends on timing (a reset seen while receiving is an OSError, one seen
while sending an EOFError); this pins the second path.
"""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from labctl.drivers.ssh import SshSession, SshTarget
from labctl.errors import DriverError


class _Transport:
    def is_active(self) -> bool:
        return True


class _Client:
    def get_transport(self) -> _Transport:
        return _Transport()

    def close(self) -> None:
        pass


@pytest.mark.parametrize("raised", [EOFError(), paramiko.SSHException("Socket is closed")])
def test_a_break_paramiko_reports_its_own_way_is_a_sentence(
    monkeypatch: pytest.MonkeyPatch, raised: Exception
) -> None:
    session = SshSession(SshTarget("n1", "127.0.0.1", Path("/dev/null")))
    monkeypatch.setattr(session, "connect", lambda: None)
    session._client = _Client()  # type: ignore[assignment]

    def breaks(*_: object) -> None:
        raise raised

    monkeypatch.setattr(session, "_exchange", breaks)
    with pytest.raises(DriverError) as caught:
        session.run(["cat"], stdin=b"x")
    assert str(caught.value).startswith("n1 (127.0.0.1:22): `cat`: ")
    assert type(raised).__name__ in (caught.value.detail or "")
