"""IPMI driver: chassis power and boot device over IPMI 2.0 (RMCP+), on python-ipmi.

Security: python-ipmi's native ``rmcpplus`` interface implements cipher suites
1, 2, 3, 15, 16 and 17 (RAKP-HMAC-SHA1/SHA256, HMAC integrity, AES-CBC-128
confidentiality) and deliberately not 0. We try the BMC's configured suites in
order (17 then 3 by default) and refuse, before any packet is sent, suites
without integrity (1 and 15) unless the inventory sets ``allow_insecure`` for
that BMC. IPMI 1.5 sessions are never opened. Cipher suite 0 cannot be used at
all: the library does not implement it.

HP iLO (3 and later) and generic BMCs behave the same here; iLO 2 and older
speak only IPMI 1.5 and are refused with a clear error. Some iLO firmware
answers a power-on of a server that is already on with a completion code
instead of doing nothing; ``power()`` reads the state first so ON/OFF are
no-ops when already true.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any

import pyipmi
import pyipmi.interfaces
from pyipmi import errors as ipmi_errors
from pyipmi.chassis import BootDevice as PyBootDevice
from pyipmi.interfaces import rmcpplus

from labctl.drivers.neterrors import Peer, network_error
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, InsecureProtocolError

# Suites whose packets carry no integrity check: a session can be hijacked.
_NO_INTEGRITY = frozenset({0, 1, 15})
# What each python-ipmi call is for, as network errors name it.
_DOING = {
    "get_chassis_status": "power status",
    "chassis_control_power_up": "power on",
    "chassis_control_power_down": "power off",
    "chassis_control_power_cycle": "power cycle",
    "chassis_control_hard_reset": "power reset",
    "chassis_control_soft_shutdown": "soft shutdown",
    "set_boot_options": "setting the boot device",
    "get_boot_device": "reading the boot device",
    "get_boot_persistency": "reading the boot device",
}


@dataclass(frozen=True)
class BmcEndpoint:
    host: str
    username: str
    password: str = field(repr=False)
    port: int = 623
    cipher_suites: tuple[int, ...] = (17, 3)
    allow_insecure: bool = False
    timeout: float = 5.0
    retries: int = 2
    name: str = ""  # the server's name, for messages
    # The boot flags' firmware: "legacy" or "uefi" (inventory bmc.boot_mode). A flag set
    # says which the next boot uses, so a UEFI-only server given legacy flags may not boot.
    boot_mode: str = "legacy"

    @property
    def label(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{self.name} BMC ({where})" if self.name else f"BMC {where}"

    @property
    def peer(self) -> Peer:
        return Peer(self.label, self.host, self.port, device="BMC", service="BMC's IPMI service")


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"


class PowerAction(StrEnum):
    ON = "on"
    OFF = "off"
    CYCLE = "cycle"
    RESET = "reset"
    SOFT = "soft"


class BootDevice(StrEnum):
    PXE = "pxe"
    DISK = "disk"
    BIOS = "bios"
    NONE = "none"


_TO_PYIPMI = {
    BootDevice.PXE: PyBootDevice.PXE,
    BootDevice.DISK: PyBootDevice.DEFAULT_HDD,
    BootDevice.BIOS: PyBootDevice.BIOS,
    BootDevice.NONE: PyBootDevice.NO_OVERRIDE,
}
_FROM_PYIPMI = {v: k for k, v in _TO_PYIPMI.items()}


def check_policy(endpoint: BmcEndpoint) -> tuple[int, ...]:
    """The suites labctl may try for this BMC; refuses insecure ones unless allowed."""
    weak = [s for s in endpoint.cipher_suites if s in _NO_INTEGRITY]
    if weak and not endpoint.allow_insecure:
        raise InsecureProtocolError(
            f"{endpoint.label}: cipher suite(s) {', '.join(map(str, weak))} have no integrity "
            "check and sessions using them can be hijacked; set bmc.allow_insecure: true "
            "for this BMC if you accept that"
        )
    if 0 in endpoint.cipher_suites and len(endpoint.cipher_suites) == 1:
        raise InsecureProtocolError(
            f"{endpoint.label}: cipher suite 0 (no authentication at all) is not supported"
        )
    unknown = [s for s in endpoint.cipher_suites if s not in rmcpplus.CIPHER_SUITES and s != 0]
    if unknown:
        raise DriverError(
            f"{endpoint.label}: cipher suite(s) {', '.join(map(str, unknown))} are not "
            f"supported (supported: {', '.join(map(str, sorted(rmcpplus.CIPHER_SUITES)))})"
        )
    return tuple(s for s in endpoint.cipher_suites if s != 0)


class IpmiClient:
    """One RMCP+ session with one BMC; use as a context manager (or call close())."""

    def __init__(self, endpoint: BmcEndpoint) -> None:
        self.endpoint = endpoint
        self._ipmi: Any = None

    def __enter__(self) -> IpmiClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- session ---------------------------------------------------------------

    def connect(self, doing: str = "opening a session") -> None:
        """Open the session; ``doing`` is what network errors say was being tried."""
        if self._ipmi is not None:
            return
        suites = check_policy(self.endpoint)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._ipmi = self._open(suites, doing)
                return
            except DriverTimeout:
                if attempt > self.endpoint.retries:
                    raise
                time.sleep(0.2 * 2 ** (attempt - 1))

    def _open(self, suites: tuple[int, ...], doing: str) -> Any:
        ep = self.endpoint
        interface = pyipmi.interfaces.create_interface(
            "rmcpplus", keep_alive_interval=0, max_retries=ep.retries
        )
        interface.cipher_suites = suites
        ipmi = pyipmi.create_connection(interface)
        ipmi.session.set_session_type_rmcp(ep.host, port=ep.port)
        ipmi.session.set_auth_type_user(ep.username, ep.password)
        ipmi.session.set_priv_level("ADMINISTRATOR")
        ipmi.target = pyipmi.Target(ipmb_address=0x20)
        try:
            interface.open()
            interface.set_timeout(ep.timeout)
            ipmi.session.establish()
        except BaseException as exc:
            try:
                interface.close()
            finally:
                self._raise(exc, doing, opening=True)
        return ipmi

    def close(self) -> None:
        if self._ipmi is None:
            return
        try:
            self._ipmi.close()
        except Exception:
            pass
        finally:
            self._ipmi = None

    def _raise(self, exc: BaseException, doing: str, opening: bool = False) -> None:
        ep = self.endpoint
        label = ep.label
        if isinstance(exc, ipmi_errors.IpmiConnectionError):
            # python-ipmi words the socket's error its own way; the socket's is underneath.
            cause = exc.__context__
            if not isinstance(cause, OSError):
                cause = TimeoutError(str(exc))  # its only other failure: the ping went unanswered
            waited = f"{ep.timeout:g} s ({ep.retries + 1} tries)"
            raise network_error(cause, ep.peer, doing, waited) from None
        if isinstance(exc, ipmi_errors.RetryError):
            # Every retry of a request in an open session went unanswered (the BMC died).
            silence = TimeoutError(str(exc) or "no answer")
            waited = f"{ep.timeout:g} s ({ep.retries + 1} tries)"
            raise network_error(silence, ep.peer, doing, waited) from None
        if isinstance(exc, ipmi_errors.IpmiTimeoutError):
            timeout = TimeoutError(str(exc) or "timed out")
            raise network_error(timeout, ep.peer, doing, f"{ep.timeout:g} s") from None
        if isinstance(exc, OSError):
            raise network_error(exc, ep.peer, doing, f"{ep.timeout:g} s") from None
        if isinstance(exc, ipmi_errors.AuthenticationError | ipmi_errors.IpmiLongPasswordError):
            raise AuthenticationError(
                f"{label}: the BMC refused user {self.endpoint.username!r} "
                "(wrong user name or password)"
            ) from None
        if isinstance(exc, ipmi_errors.MessageStatusCodeError) and opening:
            if exc.msc in rmcpplus._MSC_ALGORITHM_REJECTED:
                suites = ", ".join(map(str, self.endpoint.cipher_suites))
                raise InsecureProtocolError(
                    f"{label}: the BMC accepted none of cipher suites {suites}; it may offer "
                    "only suites without integrity (such as 0), which labctl refuses"
                ) from None
            if exc.msc == 0x0D:  # unauthorized name
                raise AuthenticationError(
                    f"{label}: the BMC does not know user {self.endpoint.username!r}"
                ) from None
        if isinstance(exc, ipmi_errors.NotSupportedError) and opening:
            raise InsecureProtocolError(
                f"{label}: the BMC does not offer IPMI 2.0 (RMCP+); IPMI 1.5 sessions are "
                "refused (their authentication is weak)"
            ) from None
        if isinstance(exc, ipmi_errors.CompletionCodeError | ipmi_errors.MessageStatusCodeError):
            raise DriverError(f"{label}: {exc}") from None
        if isinstance(exc, ipmi_errors.DecodingError):
            raise DriverError(f"{label}: {exc}") from None
        raise exc

    def _call(self, name: str, *args: Any) -> Any:
        doing = _DOING.get(name, name)
        self.connect(doing)
        try:
            return getattr(self._ipmi, name)(*args)
        except Exception as exc:
            self.close()
            self._raise(exc, doing)

    # -- chassis ---------------------------------------------------------------

    def power_state(self) -> PowerState:
        status = self._call("get_chassis_status")
        return PowerState.ON if status.power_on else PowerState.OFF

    def power(self, action: PowerAction) -> None:
        if action in (PowerAction.ON, PowerAction.OFF):
            if self.power_state() == PowerState(action.value):
                return
            self._call(
                "chassis_control_power_up"
                if action is PowerAction.ON
                else "chassis_control_power_down"
            )
        elif action is PowerAction.CYCLE:
            self._call("chassis_control_power_cycle")
        elif action is PowerAction.RESET:
            self._call("chassis_control_hard_reset")
        else:
            self._call("chassis_control_soft_shutdown")

    def set_boot_device(self, device: BootDevice, persistent: bool = False) -> None:
        mode = "efi" if self.endpoint.boot_mode == "uefi" else "legacy"
        self._call("set_boot_options", _TO_PYIPMI[device], mode, persistent)

    def boot_device(self) -> tuple[BootDevice, bool]:
        device = self._call("get_boot_device")
        persistent = bool(self._call("get_boot_persistency"))
        return _FROM_PYIPMI.get(device, BootDevice.NONE), persistent
