"""Exceptions shared across labctl.

A ``LabctlError`` is a user-facing failure: the CLI prints its message and exits
non-zero without a traceback. Anything else escaping is a bug.
"""


class LabctlError(Exception):
    """A failure the user can act on; its message is printed as is."""

    exit_code = 1
    # The raw fault under the message (the kernel's "[Errno 113] No route to host"),
    # for `-o json` and debugging; the message itself says it in the lab's words.
    detail: str | None = None


class UsageError(LabctlError):
    """Bad arguments or unreadable input (exit 2)."""

    exit_code = 2


class SecretError(LabctlError):
    """A secret reference could not be resolved (never carries the value)."""


class DriverError(LabctlError):
    """A device or peer did not do what was asked."""


class DriverTimeout(DriverError):
    """A peer did not answer within its bound."""


class AuthenticationError(DriverError):
    """A peer refused our credentials."""


class HostKeyError(DriverError):
    """A peer's host key is unknown or changed: we refuse to talk to it."""


class InsecureProtocolError(DriverError):
    """A peer only offers a protocol we refuse without explicit permission."""


class RenderError(UsageError, ValueError):
    """An inventory value a renderer cannot write inert, so it refuses to write it.

    ``labctl validate`` should have refused the value first; this is the second
    gate (docs/reliability.md, "Quoting at render"). A ValueError too, as the
    renders' other refusals are.
    """
