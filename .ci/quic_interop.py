"""A QUIC v1 handshake with a running `veil node`, by aioquic: a second,
independent QUIC implementation. Usage: quic_interop.py HOST PORT

Passes (exit 0) when aioquic completes the QUIC handshake with ALPN h3 and
QUIC version 1 and the server accepts a stream: what a standard QUIC peer,
or a censor's active prober, gets. veil authenticates inside, on the link
stream, so a stranger's bytes there only make the node close the
connection, which is also checked (the node must not answer garbage with
anything but a close).
"""

import asyncio
import ssl
import sys

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamDataReceived


class Probe(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handshake = None
        self.terminated = asyncio.get_event_loop().create_future()
        self.received = 0

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            self.handshake = event
        elif isinstance(event, StreamDataReceived):
            self.received += len(event.data)
        elif isinstance(event, ConnectionTerminated):
            if not self.terminated.done():
                self.terminated.set_result(event)


async def main(host: str, port: int) -> int:
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
    # veil's certificates are throw-away and name nothing (docs/quic.md §3).
    config.verify_mode = ssl.CERT_NONE
    async with connect(host, port, configuration=config, create_protocol=Probe,
                       wait_connected=True) as probe:
        hs = probe.handshake
        if hs is None:
            print("FAIL: no HandshakeCompleted event")
            return 1
        version = probe._quic._version
        print(f"handshake completed: ALPN {hs.alpn_protocol!r}, QUIC version {version:#x}, "
              f"session resumed {hs.session_resumed}, early data {hs.early_data_accepted}")
        if hs.alpn_protocol != "h3" or version != 1:
            print("FAIL: expected ALPN h3 over QUIC version 1")
            return 1
        # The link stream: 34 bytes that are not a Noise message 1 of veil's
        # (wrong length prefix). The node must close, not answer.
        stream = probe._quic.get_next_available_stream_id()
        probe._quic.send_stream_data(stream, b"\x00\x20" + b"\x00" * 30, end_stream=False)
        probe.transmit()
        try:
            await asyncio.wait_for(asyncio.shield(probe.terminated), timeout=15)
        except asyncio.TimeoutError:
            # A node may also just wait for its handshake timeout; either is fine,
            # as long as it sent nothing back.
            pass
        if probe.received:
            print(f"FAIL: the node answered a stranger's bytes with {probe.received} bytes")
            return 1
        print(f"the node sent nothing back on the stream ({'closed' if probe.terminated.done() else 'still open'})")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
