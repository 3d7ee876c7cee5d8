"""Network failures told as sentences: each errno's story, and the raw error kept beside it."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from labctl.drivers.neterrors import Peer, explain, network_error
from labctl.errors import DriverError, DriverTimeout

BMC = Peer("fohn BMC (10.31.0.11:623)", "10.31.0.11", 623, "BMC", "BMC's IPMI service")


def oserror(number: int) -> OSError:
    # As the socket module raises them: the right subclass, errno and the C library's text.
    return OSError(number, os.strerror(number))


@pytest.mark.parametrize(
    ("number", "said"),
    [
        (
            errno.ECONNREFUSED,
            "connection refused by 10.31.0.11:623: the host is there but nothing listens on "
            "that port (the BMC's IPMI service is not running, or the port is wrong)",
        ),
        (
            errno.EHOSTUNREACH,
            "no route to 10.31.0.11: the BMC is off or unplugged, or the management network "
            "is down or not routed here",
        ),
        (
            errno.ENETUNREACH,
            "network unreachable for 10.31.0.11: this machine has no route to the management "
            "network: it is down or not routed here",
        ),
        (
            errno.EINVAL,
            "the kernel refused to send to 10.31.0.11:623: a blackhole route covers it, as when "
            "the link to the management network is gone, or the address or port is not valid",
        ),
        (errno.EACCES, "sending to 10.31.0.11 is not permitted: a firewall rule or a prohibit"),
        (errno.EPERM, "sending to 10.31.0.11 is not permitted: a firewall rule on this machine"),
        (errno.ECONNRESET, "10.31.0.11:623 reset the connection: the BMC's IPMI service closed"),
        (errno.ECONNABORTED, "the connection to 10.31.0.11:623 was aborted"),
        (errno.EPIPE, "the connection to 10.31.0.11:623 broke"),
        (errno.ETIMEDOUT, "no answer in time: the BMC is off or busy"),
        (errno.EHOSTDOWN, "10.31.0.11 is down: the BMC does not answer on the management"),
        (errno.ENETDOWN, "the network towards 10.31.0.11 is down"),
        (errno.EADDRNOTAVAIL, "cannot send to 10.31.0.11:623 from here"),
    ],
)
def test_each_errno_has_its_sentence_and_keeps_the_raw_text(number: int, said: str) -> None:
    raw = oserror(number)
    error = network_error(raw, BMC, "power status")
    assert str(error).startswith(f"fohn BMC (10.31.0.11:623): power status: {said}")
    assert os.strerror(number) not in str(error)  # the kernel's words are not the story...
    assert error.detail == str(raw)  # ...but they are kept
    assert f"[Errno {number}]" in error.detail


def test_timeouts_are_driver_timeouts_and_say_how_long() -> None:
    error = network_error(TimeoutError("timed out"), BMC, "power on", "5 s (3 tries)")
    assert isinstance(error, DriverTimeout)
    assert "power on: no answer within 5 s (3 tries): the BMC is off or busy" in str(error)
    assert error.detail == "timed out"
    assert isinstance(network_error(oserror(errno.ETIMEDOUT), BMC, "x"), DriverTimeout)


def test_other_failures_are_driver_errors_not_timeouts() -> None:
    error = network_error(oserror(errno.EHOSTUNREACH), BMC, "power status")
    assert isinstance(error, DriverError) and not isinstance(error, DriverTimeout)


def test_an_unknown_errno_still_says_where_and_what() -> None:
    error = network_error(oserror(errno.ENOBUFS), BMC, "power status")
    assert str(error) == (
        "fohn BMC (10.31.0.11:623): power status: network error talking to 10.31.0.11:623: "
        f"{os.strerror(errno.ENOBUFS)}"
    )


def test_an_error_without_errno_keeps_its_words() -> None:
    error = network_error(OSError("Socket is closed"), BMC, "power off")
    assert str(error).endswith("network error talking to 10.31.0.11:623: Socket is closed")
    assert error.detail == "Socket is closed"


def test_names_that_do_not_resolve() -> None:
    raw = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    said = explain(raw, Peer("pdu1 (pdu1.lab:161)", "pdu1.lab", 161, "PDU", "SNMP agent"))
    assert said.startswith("cannot resolve pdu1.lab (Name or service not known): the name is")


def test_the_peer_words_the_cause_and_a_caller_may_add_one() -> None:
    node = Peer("wind (10.31.1.13:22)", "10.31.1.13", 22, "node", "SSH server", "its network")
    said = explain(oserror(errno.EHOSTUNREACH), node)
    assert said == (
        "no route to 10.31.1.13: the node is off or unplugged, or its network is down or not "
        "routed here"
    )
    said = explain(TimeoutError(), BMC, "3 s", also="the community is wrong")
    assert said.endswith("drops the packets, or the community is wrong")
