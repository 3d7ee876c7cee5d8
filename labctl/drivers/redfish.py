"""Redfish driver: a server's power, boot device and identity through its BMC's Redfish service.

Today's BMCs (iDRAC 9, iLO 5/6, XClarity, Supermicro X11 and later) prefer Redfish,
HTTPS and JSON, to IPMI; this driver speaks it with sushy, the Redfish client
OpenStack Ironic uses, imported only here and only when a Redfish BMC is driven
(``labctl --help`` and ``validate`` never pay for it). It offers the same calls as
the IPMI client (``power_state``, ``power``, ``set_boot_device``, ``boot_device``,
``close``), so the power channel, ``labctl power`` and the BMC applier drive either.

labctl's verbs as Redfish ``ResetType`` values (ComputerSystem.Reset):

* ``on``: ``On`` (nothing when the system is already on).
* ``off``: ``ForceOff`` (nothing when already off).
* ``cycle``: ``PowerCycle``; a service that does not list it gets ``ForceRestart``
  (iLO lists no ``PowerCycle``); a system that is off gets ``On``.
* ``reset``: ``ForceRestart``, else ``PowerCycle``.
* ``soft``: ``GracefulShutdown`` (the OS is asked to shut down; no fallback: a
  hard stop is not what was asked).

Before each reset the system's ``ResetType@Redfish.AllowableValues`` is read (when
the service publishes it): a verb none of whose ResetTypes is allowed fails with a
sentence naming what the service does allow, and nothing is sent.

Boot device: ``pxe`` is ``Pxe``, ``disk`` ``Hdd``, ``bios`` ``BiosSetup``, ``none``
``None``; ``BootSourceOverrideEnabled`` is ``Once`` unless persistent
(``Continuous``).

Every request is bounded by the endpoint's timeout (connect and read) and sent
once (sushy's own retries are turned off: the caller's bound decides). Failures
become labctl errors with a sentence: user refused (HTTP 401/403), the service
unreachable (the socket's error, as the other drivers say it), a TLS certificate
not trusted, a system id not found (naming the ones there are).
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

from labctl.drivers.ipmi import BootDevice, PowerAction, PowerState
from labctl.drivers.neterrors import Peer, network_error
from labctl.errors import AuthenticationError, DriverError, InsecureProtocolError

# labctl's verb -> the ResetTypes that do it, in order of preference.
RESET_TYPES: dict[PowerAction, tuple[str, ...]] = {
    PowerAction.ON: ("On",),
    PowerAction.OFF: ("ForceOff",),
    PowerAction.CYCLE: ("PowerCycle", "ForceRestart"),
    PowerAction.RESET: ("ForceRestart", "PowerCycle"),
    PowerAction.SOFT: ("GracefulShutdown",),
}
BOOT_TARGETS: dict[BootDevice, str] = {
    BootDevice.PXE: "Pxe",
    BootDevice.DISK: "Hdd",
    BootDevice.BIOS: "BiosSetup",
    BootDevice.NONE: "None",
}
_FROM_TARGET = {v: k for k, v in BOOT_TARGETS.items()}


@dataclass(frozen=True)
class RedfishEndpoint:
    host: str
    username: str
    password: str = field(repr=False)
    port: int = 443
    scheme: str = "https"
    verify: bool | str = True  # False, True (the system's CAs) or a CA file's path
    system: str | None = None  # the system's id; None: the service's only system
    timeout: float = 5.0
    name: str = ""  # the server's name, for messages
    # BootSourceOverrideMode to send with the boot device ("legacy", "uefi"), or None to
    # leave the service's own: some services refuse the property, so only when asked.
    boot_mode: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def label(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{self.name} BMC ({where})" if self.name else f"BMC {where}"

    @property
    def peer(self) -> Peer:
        return Peer(self.label, self.host, self.port, device="BMC", service="Redfish service")


@dataclass(frozen=True)
class SystemIdentity:
    """What the service says the system is."""

    id: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    uuid: str | None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, urllib3's ``reason``, exceptions in args."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e in seen:
            continue
        seen.append(e)
        nested = [e.__cause__, e.__context__, getattr(e, "reason", None)]
        nested += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [n for n in nested if isinstance(n, BaseException)]
    return seen


class RedfishClient:
    """One BMC's Redfish service; the connection opens on the first call."""

    def __init__(self, endpoint: RedfishEndpoint) -> None:
        self.endpoint = endpoint
        self._conn: Any = None
        self._system_path: str | None = None

    # -- connection ------------------------------------------------------------

    def _connect(self, doing: str) -> Any:
        if self._conn is not None:
            return self._conn
        import sushy
        from sushy import auth

        ep = self.endpoint
        try:
            self._conn = sushy.Sushy(
                f"{ep.url}/redfish/v1/",
                auth=auth.BasicAuth(ep.username, ep.password),
                verify=ep.verify,
                read_timeout=ep.timeout,
                connect_timeout=ep.timeout,
                server_side_retries=1,
                server_side_retries_delay=0,
            )
        except Exception as exc:
            self._raise(exc, doing)
        return self._conn

    def _system(self, doing: str) -> Any:
        conn = self._connect(doing)
        try:
            if self._system_path is None:
                members = sorted(conn.get_system_collection().members_identities)
                ids = [m.rstrip("/").rsplit("/", 1)[-1] for m in members]
                wanted = self.endpoint.system
                if wanted is None:
                    if len(members) != 1:
                        raise DriverError(
                            f"{self.endpoint.label}: the Redfish service has "
                            f"{len(members)} systems ({', '.join(ids) or 'none'}); "
                            "name one in bmc.system"
                        )
                    self._system_path = members[0]
                elif wanted in ids:
                    self._system_path = members[ids.index(wanted)]
                else:
                    raise DriverError(
                        f"{self.endpoint.label}: the Redfish service has no system "
                        f"{wanted!r} (bmc.system); it has: {', '.join(ids) or 'none'}"
                    )
            return conn.get_system(self._system_path)
        except DriverError:
            raise
        except Exception as exc:
            self._raise(exc, doing)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _raise(self, exc: BaseException, doing: str) -> Any:
        from sushy import exceptions as sushy_errors

        ep = self.endpoint
        self.close()
        if isinstance(exc, sushy_errors.AccessError):
            raise AuthenticationError(
                f"{ep.label}: {doing}: the BMC refused user {ep.username!r} "
                f"(HTTP {exc.status_code}: wrong user name or password, or no rights)"
            ) from None
        if isinstance(exc, sushy_errors.ResourceNotFoundError):
            raise DriverError(
                f"{ep.label}: {doing}: not found on the Redfish service ({exc.url}); "
                "is this address a Redfish BMC?"
            ) from None
        if isinstance(exc, sushy_errors.ConnectionError):
            chain = _chain(exc)
            tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
            if tls is not None:
                if isinstance(tls, ssl.SSLCertVerificationError):
                    raise InsecureProtocolError(
                        f"{ep.label}: {doing}: the BMC's TLS certificate is not trusted "
                        f"({tls.verify_message}); give the CA that signed it in bmc.ca_file "
                        "(or set bmc.verify: false, which lets anyone on the path read the "
                        "password)"
                    ) from None
                raise DriverError(f"{ep.label}: {doing}: TLS failed: {tls}") from None
            timed_out = any(
                type(e).__name__ in ("ReadTimeout", "ConnectTimeout", "ReadTimeoutError")
                or isinstance(e, TimeoutError)
                for e in chain
            )
            sockerr = next(
                (e for e in chain if isinstance(e, OSError) and e.errno is not None), None
            )
            cause: OSError
            if sockerr is not None and not timed_out:
                cause = sockerr
            elif timed_out:
                cause = TimeoutError(str(exc))
            else:
                cause = OSError(str(exc))
            raise network_error(cause, ep.peer, doing, f"{ep.timeout:g} s") from None
        if isinstance(exc, sushy_errors.HTTPError):
            raise DriverError(
                f"{ep.label}: {doing}: the Redfish service answered HTTP {exc.status_code}: "
                f"{exc.detail or exc.body or exc}"
            ) from None
        if isinstance(exc, sushy_errors.SushyError):
            raise DriverError(f"{ep.label}: {doing}: {exc}") from None
        raise exc

    # -- power -----------------------------------------------------------------

    def power_state(self) -> PowerState:
        system = self._system("power status")
        state = str(getattr(system.power_state, "value", system.power_state) or "").lower()
        # PoweringOn counts as on, PoweringOff as off: where the system is going.
        return PowerState.ON if state in ("on", "powering on") else PowerState.OFF

    def allowed_resets(self) -> set[str] | None:
        """The ResetTypes the service lists for the system (None: it lists none)."""
        system = self._system("reading the allowed resets")
        try:
            element = system._get_reset_action_element()
        except Exception as exc:
            self._raise(exc, "reading the allowed resets")
        values = getattr(element, "allowed_values", None)
        return {str(v) for v in values} if values else None

    def power(self, action: PowerAction) -> None:
        doing = f"power {action.value}"
        if action in (PowerAction.ON, PowerAction.OFF) and self.power_state() == PowerState(
            action.value
        ):
            return
        wanted = RESET_TYPES[action]
        if action is PowerAction.CYCLE and self.power_state() is PowerState.OFF:
            wanted = ("On",)
        allowed = self.allowed_resets()
        usable = [r for r in wanted if allowed is None or r in allowed]
        if not usable:
            raise DriverError(
                f"{self.endpoint.label}: {doing}: the system allows none of "
                f"{', '.join(wanted)} (it allows {', '.join(sorted(allowed or ()))})"
            )
        import sushy

        system = self._system(doing)
        try:
            system.reset_system(sushy.ResetType(usable[0]))
        except Exception as exc:
            self._raise(exc, doing)

    # -- boot device -----------------------------------------------------------

    def set_boot_device(self, device: BootDevice, persistent: bool = False) -> None:
        import sushy

        doing = "setting the boot device"
        system = self._system(doing)
        try:
            mode = None
            if self.endpoint.boot_mode is not None:
                mode = sushy.BootSourceOverrideMode(
                    "UEFI" if self.endpoint.boot_mode == "uefi" else "Legacy"
                )
            system.set_system_boot_options(
                target=sushy.BootSource(BOOT_TARGETS[device]),
                enabled=sushy.BootSourceOverrideEnabled("Continuous" if persistent else "Once"),
                mode=mode,
            )
        except Exception as exc:
            self._raise(exc, doing)

    def boot_device(self) -> tuple[BootDevice, bool]:
        system = self._system("reading the boot device")
        boot = system.boot
        target = str(getattr(boot.target, "value", boot.target) or "None")
        enabled = str(getattr(boot.enabled, "value", boot.enabled) or "Disabled")
        if enabled == "Disabled":
            return BootDevice.NONE, False
        return _FROM_TARGET.get(target, BootDevice.NONE), enabled == "Continuous"

    # -- identity --------------------------------------------------------------

    def identity(self) -> SystemIdentity:
        system = self._system("reading the system's identity")
        return SystemIdentity(
            id=str(system.identity).rstrip("/").rsplit("/", 1)[-1],
            manufacturer=system.manufacturer,
            model=system.model,
            serial=system.serial_number,
            uuid=system.uuid,
        )
