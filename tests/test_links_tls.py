"""TLS for tls:// links (spec §2.5): the certificate, and real TLS 1.3 loopback connections."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.test_links_support import Collecting, RealReactorTestCase, Recorder, close_all
from ygg.keys import NodeKey
from ygg.links.tls import (
    NOT_AFTER,
    client_connection_creator,
    make_certificate,
    server_context_factory,
)

# (obs) The certificate a Debian yggdrasil 0.4.7 node served on its TLS listener, with the
# private key of its configuration and its start time; ed25519 signatures are
# deterministic, so the same key and time must give the same bytes.
GO_PRIVATE_KEY = bytes.fromhex(
    "34d8ae59901d26453a5b6516b599bf7f785a5f22b9db725820ae84291064ccd2"
    "75f3bc120fa5d0bcc01f90890af75aa59f3bf04061ab6e68ff8d2f35ff056c93"
)
GO_START = datetime.datetime(2026, 11, 22, 4, 14, 6, tzinfo=datetime.UTC)
GO_CERTIFICATE = bytes.fromhex(
    "3082017c3082012ea003020102020101300506032b6570304b314930470603550403134037356633"
    "626331323066613564306263633031663930383930616637356161353966336266303430363161"
    "623665363866663864326633356666303536633933302017"
    "0d3236313132323034313430365a180f39393939313233313233353935395a304b314930470603"
    "550403134037356633626331323066613564306263633031663930383930616637356161353966"
    "336266303430363161623665363866663864326633356666303536633933302a300506032b6570"
    "03210075f3bc120fa5d0bcc01f90890af75aa59f3bf04061ab6e68ff8d2f35ff056c93a3353033"
    "300e0603551d0f0101ff0404030205a030130603551d25040c300a06082b06010505070301300c"
    "0603551d130101ff04023000300506032b6570034100eb8f66700b31ec00a46447c8fa37123fa9"
    "71632104920fe5ea5eb679a04da941c0d9ef6a284050db2f2701da04445c1bc138d0c0590b5235"
    "a8b95ae12a3cfb01"
)


def der(node_key: NodeKey, now: datetime.datetime | None = None) -> bytes:
    return make_certificate(node_key, now=now)[0].to_cryptography().public_bytes(Encoding.DER)


class CertificateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.key = NodeKey.generate()
        self.before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self.cert = make_certificate(self.key)[0].to_cryptography()

    def test_same_bytes_as_the_go_node(self) -> None:
        self.assertEqual(der(NodeKey(GO_PRIVATE_KEY), GO_START).hex(), GO_CERTIFICATE.hex())

    def test_fields(self) -> None:
        cert = self.cert
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.key.public.hex())])
        self.assertEqual(cert.version, x509.Version.v3)
        self.assertEqual(cert.serial_number, 1)
        self.assertEqual(cert.subject, name)
        self.assertEqual(cert.issuer, name)
        self.assertLessEqual(self.before, cert.not_valid_before_utc)
        self.assertLessEqual(cert.not_valid_before_utc - self.before, datetime.timedelta(seconds=2))
        self.assertEqual(
            cert.not_valid_after_utc,
            datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC),
        )
        self.assertEqual(cert.not_valid_after_utc, NOT_AFTER)
        self.assertEqual(cert.signature_algorithm_oid, SignatureAlgorithmOID.ED25519)

    def test_common_name_is_a_printable_string(self) -> None:
        (attribute,) = self.cert.subject
        self.assertEqual(attribute.value, self.key.public.hex())
        self.assertEqual(attribute._type.name, "PrintableString")

    def test_extensions_exactly(self) -> None:
        extensions = list(self.cert.extensions)
        self.assertEqual(
            [(e.oid, e.critical) for e in extensions],
            [
                (x509.OID_KEY_USAGE, True),
                (x509.OID_EXTENDED_KEY_USAGE, False),
                (x509.OID_BASIC_CONSTRAINTS, True),
            ],
        )
        usage = extensions[0].value
        self.assertTrue(usage.digital_signature)
        self.assertTrue(usage.key_encipherment)
        for flag in (
            "content_commitment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        ):
            self.assertFalse(getattr(usage, flag), flag)
        self.assertEqual(list(extensions[1].value), [ExtendedKeyUsageOID.SERVER_AUTH])
        self.assertEqual(extensions[2].value, x509.BasicConstraints(ca=False, path_length=None))

    def test_key_and_self_signature(self) -> None:
        public = self.cert.public_key()
        self.assertEqual(public.public_bytes(Encoding.Raw, PublicFormat.Raw), self.key.public)
        Ed25519PublicKey.from_public_bytes(self.key.public).verify(
            self.cert.signature, self.cert.tbs_certificate_bytes
        )

    def test_explicit_start_time(self) -> None:
        start = datetime.datetime(2030, 1, 2, 3, 4, 5, 678, tzinfo=datetime.UTC)
        cert = make_certificate(self.key, now=start)[0].to_cryptography()
        self.assertEqual(cert.not_valid_before_utc, start.replace(microsecond=0))


@implementer(IOpenSSLClientConnectionCreator)
class TLS12OnlyClient:
    def __init__(self) -> None:
        self.context = SSL.Context(SSL.TLS_METHOD)
        self.context.set_max_proto_version(SSL.TLS1_2_VERSION)

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self.context, None)
        connection.set_connect_state()
        return connection


class LoopbackTests(RealReactorTestCase):
    """Our client creator against our server factory over 127.0.0.1."""

    async def connect(self, server_tls: object, client_creator: object) -> tuple[Recorder, ...]:
        servers = Collecting()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            TLSMemoryBIOFactory(server_tls, False, servers)
        )
        self.addCleanup(port.stopListening)
        endpoint = wrapClientTLS(
            client_creator, TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        )
        client = await endpoint.connect(Collecting())
        server = await servers.first
        return client, server

    async def test_tls13_both_certificates(self) -> None:
        server_key, client_key = NodeKey.generate(), NodeKey.generate()
        client, server = await self.connect(
            server_context_factory(server_key, request_client_certificate=True),
            client_connection_creator(client_key, "peer.example"),
        )
        client.transport.write(b"meta from client")
        self.assertEqual(await server.wait_bytes(16), b"meta from client")
        server.transport.write(b"meta from server")
        self.assertEqual(await client.wait_bytes(16), b"meta from server")

        def common_name(transport: object) -> str:
            cert = transport.getPeerCertificate().to_cryptography()  # type: ignore[attr-defined]
            return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

        self.assertEqual(common_name(client.transport), server_key.public.hex())
        self.assertEqual(common_name(server.transport), client_key.public.hex())
        for side in (client, server):
            self.assertEqual(side.transport.getHandle().get_protocol_version_name(), "TLSv1.3")
        self.assertEqual(server.transport.getHandle().get_servername(), b"peer.example")
        await close_all(client, server)

    async def test_server_asks_no_client_certificate_by_default(self) -> None:
        server_key = NodeKey.generate()
        client, server = await self.connect(
            server_context_factory(server_key), client_connection_creator(NodeKey.generate(), None)
        )
        client.transport.write(b"x")
        await server.wait_bytes(1)
        self.assertIsNone(server.transport.getPeerCertificate())
        self.assertIsNotNone(client.transport.getPeerCertificate())
        self.assertIsNone(server.transport.getHandle().get_servername())
        await close_all(client, server)

    async def test_shared_certificate(self) -> None:
        key = NodeKey.generate()
        certificate = make_certificate(key)
        client, server = await self.connect(
            server_context_factory(key, certificate=certificate),
            client_connection_creator(key, None, certificate=certificate),
        )
        client.transport.write(b"x")
        await server.wait_bytes(1)
        self.assertEqual(
            client.transport.getPeerCertificate().to_cryptography(),
            certificate[0].to_cryptography(),
        )
        await close_all(client, server)

    async def test_tls12_only_client_refused(self) -> None:
        client, server = await self.connect(
            server_context_factory(NodeKey.generate()), TLS12OnlyClient()
        )
        client_reason = await client.lost
        server_reason = await server.lost
        self.assertIsInstance(client_reason, SSL.Error)
        self.assertIn("protocol version", str(client_reason))
        self.assertIsInstance(server_reason, SSL.Error)
        self.assertIn("unsupported protocol", str(server_reason))
