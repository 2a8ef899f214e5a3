"""The benchmark's STUN server: probe.lab.stun's protocol in the bench's server namespace.

    ip netns exec SERVER python -m bench.stun --listen 10.77.2.4:3478 --mapped 192.0.2.77

(``probe.lab.stun`` itself runs only inside the censorship lab's namespaces.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from probe.lab.stun import StunProtocol


async def serve(ip: str, port: int, mapped: str | None) -> None:
    """Answer binding requests on ``ip:port`` until cancelled."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: StunProtocol(mapped),
                                                       local_addr=(ip, port))  # fmt: skip
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stun", description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="IPv4:PORT")
    ap.add_argument("--mapped", help="answer this address instead of the client's (a NAT)")
    args = ap.parse_args(argv)
    ip, _, port = args.listen.rpartition(":")
    try:
        asyncio.run(serve(ip, int(port), args.mapped))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
