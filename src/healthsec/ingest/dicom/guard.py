"""Connection guard of the DICOM SCP: idle bound before association, per-client limit, bounded PDU sizes.

pynetdicom starts an association thread (one of ``maximum_associations`` slots) for every TCP connection
and then reads whatever PDU length the peer declares into memory. The guard sits in front of it:

* a connection gets a slot only once a complete A-ASSOCIATE-RQ is waiting in the kernel's buffer
  (peeked, never read by us), within ``idle_s``; idle, trickling or truncated peers are closed;
* one client address holds at most ``per_client`` connections (waiting or associated), and at most
  ``max_pending`` connections wait for their request in all;
* the first PDU must be an A-ASSOCIATE-RQ no longer than ``max_associate_bytes``, and every later PDU
  no longer than ``max_pdu_bytes``: a larger declared length closes the connection before its body
  is read (nothing is buffered).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

A_ASSOCIATE_RQ = 0x01
DEFAULT_MAX_PDU = 4 * 1024 * 1024
POLL_CLOSED = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Bounds a peer must respect before and after association."""

    idle_s: float = 5.0
    per_client: int = 4
    max_pending: int = 64
    max_associate_bytes: int = 64 * 1024
    max_pdu_bytes: int = DEFAULT_MAX_PDU


# reason codes handed to ``on_refuse`` (never any bytes the peer sent)
BUSY = "busy"  # per-client or pending limit reached
IDLE = "idle"  # no complete association request within idle_s
CLOSED = "closed"  # the peer closed before a complete association request
NOT_ASSOCIATE = "not-associate"  # the first PDU is not an A-ASSOCIATE-RQ
TOO_LARGE = "too-large"  # a declared PDU length over the limit

RefuseHandler = Callable[[str, int, str, str], None]


class PduTooLarge(OSError):
    """A peer declared a PDU longer than the limit; pynetdicom treats it as a closed connection."""


class BoundedAssociationSocket(AssociationSocket):
    """pynetdicom's socket that refuses to read a PDU body longer than ``max_recv`` bytes."""

    max_recv: int = DEFAULT_MAX_PDU
    on_too_large: Callable[[int], None] | None = None

    def recv(self, nr_bytes: int) -> bytearray:
        if nr_bytes > self.max_recv:
            if self.on_too_large is not None:
                self.on_too_large(nr_bytes)
            raise PduTooLarge(f"declared PDU of {nr_bytes} bytes exceeds the limit of {self.max_recv}")
        return super().recv(nr_bytes)


class BoundedRequestHandler(RequestHandler):
    """Creates the acceptor association with a :class:`BoundedAssociationSocket`."""

    server: GuardedAssociationServer

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        sock = assoc.dul.socket
        sock.__class__ = BoundedAssociationSocket  # same object, bounded recv
        sock.max_recv = self.server.limits.max_pdu_bytes
        host, port = str(self.client_address[0]), int(self.client_address[1])
        sock.on_too_large = lambda n: self.server.refuse(host, port, TOO_LARGE, f"declared PDU of {n} bytes")
        return assoc


class GuardedAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with the guard in front of every association (see module doc)."""

    daemon_threads = True

    def __init__(
        self, *args: Any, limits: GuardLimits, on_refuse: RefuseHandler | None = None, **kwargs: Any
    ) -> None:
        self.limits = limits
        self.on_refuse = on_refuse
        self._pending: Counter[str] = Counter()
        self._guard_lock = threading.Lock()
        super().__init__(*args, request_handler=BoundedRequestHandler, **kwargs)

    def refuse(self, host: str, port: int, reason: str, detail: str) -> None:
        if self.on_refuse is not None:
            self.on_refuse(host, port, reason, detail)

    def connections_of(self, host: str) -> int:
        """Connections of one client address: waiting for their request plus associated."""
        associated = sum(1 for a in self.active_associations if str(a.requestor.address) == host)
        return self._pending[host] + associated

    def process_request(self, request: Any, client_address: Any) -> None:
        host, port = str(client_address[0]), int(client_address[1])
        with self._guard_lock:
            busy = (
                self._pending.total() >= self.limits.max_pending
                or self.connections_of(host) >= self.limits.per_client
            )
            if not busy:
                self._pending[host] += 1
        if busy:
            self.shutdown_request(request)
            self.refuse(host, port, BUSY, f"over {self.limits.per_client} connections from this client")
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        host, port = str(client_address[0]), int(client_address[1])
        try:
            verdict = None if self.ssl_context else await_association_request(request, self.limits)
            if verdict is not None:
                self.shutdown_request(request)
                self.refuse(host, port, *verdict)
                return
            super().process_request_thread(request, client_address)  # starts the association thread
        finally:
            with self._guard_lock:
                self._pending[host] -= 1
                if self._pending[host] <= 0:
                    del self._pending[host]


def await_association_request(sock: socket.socket, limits: GuardLimits) -> tuple[str, str] | None:
    """Wait (at most ``limits.idle_s``) until a whole A-ASSOCIATE-RQ is buffered; None when it is.

    Only peeks: the bytes stay in the kernel for pynetdicom. Returns ``(reason, detail)`` otherwise.
    """
    deadline = time.monotonic() + limits.idle_s
    poller = select.poll()
    poller.register(sock, select.POLLIN | POLL_CLOSED)
    need = 6
    try:
        while True:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, need)  # POLLIN once `need` bytes wait
            remaining = deadline - time.monotonic()
            events = poller.poll(max(remaining, 0) * 1000) if remaining > 0 else []
            if not events:
                return IDLE, f"no complete association request within {limits.idle_s:g} s"
            try:
                data = sock.recv(need, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                data = b""
            except OSError:
                return CLOSED, "connection reset before a complete association request"
            if need == 6 and len(data) >= 6:
                pdu_type, _, length = struct.unpack(">BBL", data[:6])
                if pdu_type != A_ASSOCIATE_RQ:
                    return NOT_ASSOCIATE, f"first PDU has type 0x{pdu_type:02X}, not A-ASSOCIATE-RQ"
                if length > limits.max_associate_bytes:
                    return TOO_LARGE, (
                        f"A-ASSOCIATE-RQ declares {length} bytes (limit {limits.max_associate_bytes})"
                    )
                need = 6 + length
                continue
            if len(data) >= need:
                return None
            if events[0][1] & POLL_CLOSED:
                return CLOSED, "connection closed before a complete association request"
            time.sleep(0.02)  # partial data without the low-water mark honoured: do not spin
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
