"""Flower's long-lived gRPC connection with mutual TLS: only certificates of the consortium CA get in.

Flower 1.42's legacy ``start_server`` uses TLS with ``require_client_auth=False`` and its node
authentication is not available on this transport, so the coordinator builds the same gRPC server
itself (Flower's ``FlowerServiceServicer``) with client certificates required by the TLS handshake, and
an interceptor that re-checks every connecting member's certificate against the CA and the CRL
(gRPC's Python API has no CRL option) and refuses an unknown or revoked one with PERMISSION_DENIED
before Flower sees it. On the member side, the channel Flower opens gets the member's certificate and
key (Flower's own ``create_channel`` only passes the CA).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from healthsec.federated.pki import PkiError, check_member, revoked_serials

LOG = logging.getLogger("healthsec.federated")
_local = threading.local()
MAX_MESSAGE = 512 * 1024 * 1024


def current_member() -> str | None:
    """The member name of the connection being registered on this thread (set by the interceptor)."""
    return getattr(_local, "member", None)


class MemberCheck(grpc.ServerInterceptor):  # type: ignore[misc]
    """Admit a peer only if its TLS certificate is a consortium member's and unrevoked (CRL re-read)."""

    def __init__(self, ca_pem: bytes, crl_path: str | None, insecure: bool = False) -> None:
        self.ca_pem = ca_pem
        self.crl_path = crl_path
        self.insecure = insecure

    def admit(self, context: grpc.ServicerContext) -> str:
        if self.insecure:
            return f"insecure:{context.peer()}"
        certs = context.auth_context().get("x509_pem_cert") or []
        if not certs:
            raise PkiError("peer presented no client certificate")
        revoked = revoked_serials(self.crl_path, self.ca_pem) if self.crl_path else set()
        return check_member(certs[0], self.ca_pem, revoked)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.stream_stream is None:
            return handler
        inner = handler.stream_stream

        def behaviour(request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                name = self.admit(context)
            except PkiError as exc:
                LOG.warning("refused connection from %s: %s", context.peer(), exc)
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"not a consortium member: {exc}")
                return
            LOG.info("admitted member %s (%s)", name, context.peer())
            _local.member = name
            try:
                yield from inner(request_iterator, context)
            finally:
                _local.member = None

        return grpc.stream_stream_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def start_server(
    client_manager: Any,
    address: str,
    ca_pem: bytes | None,
    cert_pem: bytes | None,
    key_pem: bytes | None,
    crl_path: str | None,
    insecure: bool = False,
) -> grpc.Server:
    """Start Flower's fleet service on ``address``; mutual TLS unless ``insecure`` (loopback enforced)."""
    from flwr.proto.transport_pb2_grpc import add_FlowerServiceServicer_to_server
    from flwr.server.superlink.fleet.grpc_bidi.flower_service_servicer import FlowerServiceServicer

    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=64),
        options=options,
        interceptors=[MemberCheck(ca_pem or b"", crl_path, insecure)],
    )
    add_FlowerServiceServicer_to_server(FlowerServiceServicer(client_manager), server)
    if insecure:
        host = address.rpartition(":")[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"--insecure listens on loopback only, not {host!r}")
        port = server.add_insecure_port(address)
    else:
        if not (ca_pem and cert_pem and key_pem):
            raise ValueError("TLS needs the CA certificate, the coordinator certificate and its key")
        creds = grpc.ssl_server_credentials(
            ((key_pem, cert_pem),), root_certificates=ca_pem, require_client_auth=True
        )
        port = server.add_secure_port(address, creds)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    server.bound_port = port  # type: ignore[attr-defined]
    return server


class MembershipRefused(PermissionError):
    """The coordinator refused this member (unknown or revoked certificate): retrying cannot help."""


class _Refusing:
    """A response stream that turns PERMISSION_DENIED into MembershipRefused (Flower retries RpcErrors)."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> _Refusing:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise MembershipRefused(exc.details()) from None
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _RefusalInterceptor(grpc.StreamStreamClientInterceptor):  # type: ignore[misc]
    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return _Refusing(continuation(details, request_iterator))


def use_member_certificate(cert_pem: bytes, key_pem: bytes) -> None:
    """Make Flower's client connection present this member's certificate (mutual TLS)."""
    import flwr.compat.client.grpc_client.connection as conn

    def create_channel(
        server_address: str,
        insecure: bool,
        root_certificates: bytes | None = None,
        max_message_length: int = MAX_MESSAGE,
        interceptors: Any = None,
    ) -> grpc.Channel:
        options = [
            ("grpc.max_send_message_length", max_message_length),
            ("grpc.max_receive_message_length", max_message_length),
        ]
        if insecure:
            return grpc.insecure_channel(server_address, options=options)
        creds = grpc.ssl_channel_credentials(
            root_certificates, private_key=key_pem, certificate_chain=cert_pem
        )
        channel = grpc.secure_channel(server_address, creds, options=options)
        return grpc.intercept_channel(channel, _RefusalInterceptor())

    conn.create_channel = create_channel  # type: ignore[assignment]
