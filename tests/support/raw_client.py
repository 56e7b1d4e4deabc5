"""A bare TWS client over a socket, built on slob's wire codec, for tests that need
to send what IB's client never would (bad handshakes, unknown ids, junk)."""

from __future__ import annotations

import socket
import time

from slob.ib import wire


class RawClient:
    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.decoder = wire.FrameDecoder()
        self.frames: list[bytes] = []
        self.server_version = 0

    def hello(self, lo: int = 100, hi: int = 200) -> wire.ServerHello:
        self.sock.sendall(wire.ClientHello(lo, hi).encode())
        greeting = wire.ServerHello.parse(self.next_frame())
        self.server_version = greeting.server_version
        return greeting

    def start_api(self, client_id: int = 1) -> None:
        self.send(71, [2, client_id, ""])

    def ready(self, client_id: int = 1) -> "RawClient":
        """Handshake, START_API, and read up to NEXT_VALID_ID: a session ready for requests."""
        self.hello()
        self.start_api(client_id)
        self.read_until(9)
        return self

    def send(self, msg_id: int, fields: list[object]) -> None:
        self.sock.sendall(wire.encode_message(msg_id, fields, self.server_version or 200))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_frame(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.frames:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    def next_message(self, timeout: float = 5.0) -> wire.Message:
        return wire.decode_message(self.next_frame(timeout), self.server_version)

    def read_until(self, msg_id: int, timeout: float = 5.0) -> list[wire.Message]:
        """Messages up to and including the first with ``msg_id``."""
        out = []
        while True:
            m = self.next_message(timeout)
            out.append(m)
            if m.msg_id == msg_id:
                return out

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the server has closed (reads drain to EOF)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        return False

    def close(self) -> None:
        self.sock.close()
