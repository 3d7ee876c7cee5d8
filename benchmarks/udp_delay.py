"""A UDP relay that delays every datagram, both ways: network latency without netem.

Usage: python benchmarks/udp_delay.py DELAY_MS LISTEN_HOST:PORT=TARGET_HOST:PORT ...

The benchmark machine's kernel has no sch_netem ("Specified qdisc kind is
unknown"), so latency is added here instead: each datagram is held DELAY_MS
before it is passed on, in each direction, like a link with that one-way delay.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

Address = tuple[str, int]


class Upstream(asyncio.DatagramProtocol):
    """The relay's socket towards the target, one per client."""

    def __init__(self, relay: Relay, client: Address) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport is a DatagramTransport in all but its class tree.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.relay.later(lambda: self.relay.send_back(data, self.client))


class Relay(asyncio.DatagramProtocol):
    def __init__(self, target: Address, delay: float) -> None:
        self.target = target
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None
        self.upstreams: dict[Address, Upstream] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport is a DatagramTransport in all but its class tree.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def later(self, action: object) -> None:
        asyncio.get_running_loop().call_later(self.delay, action)  # type: ignore[arg-type]

    def send_back(self, data: bytes, client: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, client)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        asyncio.get_running_loop().create_task(self.forward(data, addr))

    async def forward(self, data: bytes, client: Address) -> None:
        upstream = self.upstreams.get(client)
        if upstream is None:
            loop = asyncio.get_running_loop()
            _, upstream = await loop.create_datagram_endpoint(
                lambda: Upstream(self, client), remote_addr=self.target
            )
            self.upstreams[client] = upstream
        await asyncio.sleep(self.delay)
        assert upstream.transport is not None
        upstream.transport.sendto(data)


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(delay_ms: float, mappings: list[str]) -> None:
    loop = asyncio.get_running_loop()
    for mapping in mappings:
        listen, _, target = mapping.partition("=")
        await loop.create_datagram_endpoint(
            lambda t=_address(target): Relay(t, delay_ms / 1000), local_addr=_address(listen)
        )
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), sys.argv[2:]))
