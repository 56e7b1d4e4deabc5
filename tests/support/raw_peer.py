"""A loopback peer that greets like a TWS and then misbehaves on purpose, for tests of
what slob does against something that is not (or no longer) a working TWS.

``before_ready`` behaviours act instead of the greeting; the others after the session is
ready (nextValidId + managedAccounts sent, the first REQ_CURRENT_TIME answered), and again
on every reconnect:

* ``greeting_junk`` -- random bytes instead of the greeting
* ``greeting_silent`` -- accepts, says nothing
* ``greeting_trickle`` -- the greeting, one byte every ``trickle`` seconds
* ``oversize`` -- a 2 GB length prefix mid-stream
* ``random`` -- random bytes mid-stream
* ``silent`` -- stops answering anything (the socket stays open)
* ``partial`` -- announces a 100-byte frame, sends 10 bytes of it, then nothing
* ``trickle`` -- a frame, one byte every ``trickle`` seconds
"""

from __future__ import annotations

import datetime as dt
import random
import socket
import threading

from slob.ib import wire
from slob.testing import tws_messages as msg

BEFORE_READY = ("greeting_junk", "greeting_silent", "greeting_trickle")
AFTER_READY = ("oversize", "random", "silent", "partial", "trickle")
_START_API, _REQ_CURRENT_TIME = 71, 49


class RawPeer:
    def __init__(self, behaviour: str, *, trickle: float = 0.2, seed: int = 7) -> None:
        assert behaviour in BEFORE_READY + AFTER_READY, behaviour
        self.behaviour = behaviour
        self.trickle = trickle
        self.random = random.Random(seed)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="raw-peer", daemon=True)

    def __enter__(self) -> "RawPeer":
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.server.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self._acceptor.join(5)
        for t in self._threads:
            t.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock,), name="raw-peer-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the peer is stopping (True: go on)."""
        return not self._stop.wait(seconds)

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._session(sock)
        except OSError:
            pass

    def _session(self, sock: socket.socket) -> None:
        decoder = wire.FrameDecoder(expect_api_prefix=True)
        frames: list[bytes] = []

        def next_frame() -> bytes | None:
            while not frames:
                data = sock.recv(65536)
                if not data:
                    return None
                frames.extend(decoder.feed(data))
            return frames.pop(0)

        if next_frame() is None:  # the client's version range
            return
        hello = msg.server_hello(200, dt.datetime.now(dt.timezone.utc))
        if self.behaviour == "greeting_junk":
            sock.sendall(bytes(self.random.getrandbits(8) for _ in range(64)))
            self._stop.wait()
            return
        if self.behaviour == "greeting_silent":
            self._stop.wait()
            return
        if self.behaviour == "greeting_trickle":
            for byte in hello:
                if not self._wait(self.trickle):
                    return
                sock.sendall(bytes([byte]))
            self._stop.wait()
            return
        sock.sendall(hello)
        answered_time = False
        while not answered_time:
            payload = next_frame()
            if payload is None:
                return
            msg_id = int(wire.split_fields(payload)[0])
            if msg_id == _START_API:
                sock.sendall(msg.next_valid_id(1, 200) + msg.managed_accounts(["DU1234567"], 200))
            elif msg_id == _REQ_CURRENT_TIME:
                sock.sendall(msg.current_time(int(dt.datetime.now(dt.timezone.utc).timestamp()), 200))
                answered_time = True
        self._misbehave(sock)

    def _misbehave(self, sock: socket.socket) -> None:
        b = self.behaviour
        if b == "oversize":
            sock.sendall((0x7FFFFFFF).to_bytes(4, "big") + b"junk")
        elif b == "random":
            sock.sendall(bytes([0xFF, 0xFF]) + bytes(self.random.getrandbits(8) for _ in range(254)))
        elif b == "partial":
            sock.sendall((100).to_bytes(4, "big") + b"4\x002\x001\x00")
        elif b == "trickle":
            frame = msg.current_time(1_700_000_000, 200) * 50
            for byte in frame:
                if not self._wait(self.trickle):
                    return
                sock.sendall(bytes([byte]))
        # "silent", and everything after the others: read and ignore, never answer
        while not self._stop.is_set():
            try:
                if not sock.recv(65536):
                    return
            except OSError:
                return
