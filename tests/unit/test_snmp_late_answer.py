"""An SNMP answer that arrives as the client closes is dropped, not a traceback.

pysnmp schedules each datagram for the dispatcher on the loop's next turn; when the
client closed meanwhile (an answer to a retry, after the first answer or the agent's
refusal ended the request: seen in the fault suite with a wrong PDU key), the
dispatcher no longer knows the transport and raises ``CarrierError``, which asyncio
printed as "Exception in callback ..." with a traceback on the operator's terminal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pysnmp.carrier.error import CarrierError

from labctl.drivers.snmp import _ReportingUdp


class Dispatcher:
    """pysnmp's dispatcher as far as a transport sees it: a map of the ones it knows."""

    def __init__(self) -> None:
        self.known: set[object] = set()
        self.got: list[bytes] = []

    def callback(self, transport: object, address: Any, datagram: bytes) -> None:
        if transport not in self.known:
            raise CarrierError(f"Unregistered transport {transport}")
        self.got.append(datagram)


def _deliver(close_first: bool) -> tuple[list[bytes], list[dict[str, Any]]]:
    loop = asyncio.new_event_loop()
    faults: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: faults.append(context))
    try:
        asyncio.set_event_loop(loop)
        transport = _ReportingUdp(lambda exc: None)
        dispatcher = Dispatcher()
        dispatcher.known.add(transport)
        transport.register_callback(dispatcher.callback)
        transport.datagram_received(b"answer", ("127.0.0.1", 161))
        if close_first:  # as close_dispatcher does, before the loop's next turn
            dispatcher.known.discard(transport)
            transport.unregister_callback()
        loop.run_until_complete(asyncio.sleep(0))
        return dispatcher.got, faults
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_an_answer_to_an_open_client_reaches_the_dispatcher() -> None:
    assert _deliver(close_first=False) == ([b"answer"], [])


def test_an_answer_that_arrives_as_the_client_closes_is_dropped_quietly() -> None:
    assert _deliver(close_first=True) == ([], [])
