"""TLS for ``tls://`` links as the Go node sets it up (spec §2.5).

TLS 1.3 only, a self-signed ed25519 certificate made from the node key, and no
verification in either direction: the link handshake's key checks are the only
authentication.  The objects here plug into Twisted's TLS machinery
(``TLSMemoryBIOFactory``, ``wrapClientTLS``, ``SSL4ServerEndpoint``).

This module is cheap to import: pyOpenSSL and cryptography are imported when the first
certificate or context is made, so a node without TLS links never loads them.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLContextFactory,
    IOpenSSLServerConnectionCreator,
)
from zope.interface import implementer

from ygg.keys import NodeKey

if TYPE_CHECKING:
    from OpenSSL import SSL, crypto

    Certificate = tuple[crypto.X509, crypto.PKey]
else:
    Certificate = tuple[Any, Any]

NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def make_certificate(node_key: NodeKey, *, now: datetime.datetime | None = None) -> Certificate:
    """The node's self-signed certificate, field for field as the Go node makes it.

    X.509 v3, serial 1, subject = issuer = ``CN=<hex public key>``, valid from ``now`` to
    9999-12-31 23:59:59 UTC, KeyUsage (critical) digitalSignature + keyEncipherment,
    ExtKeyUsage serverAuth, BasicConstraints (critical) CA=false, signed with the node key.
    """
    # pyOpenSSL and cryptography (~13 MiB with Twisted's TLS) load with the first TLS link.
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from OpenSSL import crypto

    key = Ed25519PrivateKey.from_private_bytes(node_key.seed)
    # Go writes a name made only of printable characters as a PrintableString.
    common_name = x509.NameAttribute(
        NameOID.COMMON_NAME, node_key.public.hex(), _ASN1Type.PrintableString
    )
    name = x509.Name([common_name])
    start = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .serial_number(1)
        .subject_name(name)
        .issuer_name(name)
        .not_valid_before(start)
        .not_valid_after(NOT_AFTER)
        .public_key(key.public_key())
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, algorithm=None)
    )
    return crypto.X509.from_cryptography(certificate), crypto.PKey.from_cryptography_key(key)


def _context(certificate: Certificate, *, request_client_certificate: bool) -> SSL.Context:
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION)
    context.use_certificate(certificate[0].to_cryptography())
    context.use_privatekey(certificate[1].to_cryptography_key())
    context.check_privatekey()
    if request_client_certificate:
        # Ask for the peer's certificate but accept anything, or nothing.
        context.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    else:
        context.set_verify(SSL.VERIFY_NONE)
    return context


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLContextFactory)
class ServerTLS:
    """Listener-side TLS: our certificate, TLS 1.3 only, no client verification.

    Provides both the connection-creator and the older ``getContext`` interface, so it
    serves ``TLSMemoryBIOFactory(…, isClient=False, …)`` and ``SSL4ServerEndpoint`` alike.
    """

    def __init__(self, certificate: Certificate, *, request_client_certificate: bool) -> None:
        self._context = _context(certificate, request_client_certificate=request_client_certificate)

    def getContext(self) -> SSL.Context:
        return self._context

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        from OpenSSL import SSL

        connection = SSL.Connection(self._context, None)
        connection.set_accept_state()
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class ClientTLS:
    """Dialer-side TLS: our certificate offered, TLS 1.3 only, no server verification,
    SNI when a name is given."""

    def __init__(self, certificate: Certificate, server_name: str | None) -> None:
        self._context = _context(certificate, request_client_certificate=False)
        self.server_name = server_name

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        from OpenSSL import SSL

        connection = SSL.Connection(self._context, None)
        if self.server_name:
            connection.set_tlsext_host_name(self.server_name.encode("utf-8"))
        connection.set_connect_state()
        return connection


def server_context_factory(
    node_key: NodeKey,
    *,
    certificate: Certificate | None = None,
    request_client_certificate: bool = False,
) -> ServerTLS:
    """TLS for a ``tls://`` listener.

    Like the Go node, the server does not ask for a client certificate; pass
    ``request_client_certificate=True`` to ask for one (any certificate, or none, is then
    accepted).  ``certificate`` reuses one from :func:`make_certificate` (the Go node makes
    one at start and uses it everywhere).
    """
    return ServerTLS(
        certificate or make_certificate(node_key),
        request_client_certificate=request_client_certificate,
    )


def client_connection_creator(
    node_key: NodeKey, server_name: str | None, *, certificate: Certificate | None = None
) -> ClientTLS:
    """TLS for dialing a ``tls://`` peer; ``server_name`` from :meth:`PeerURI.server_name`."""
    return ClientTLS(certificate or make_certificate(node_key), server_name)
