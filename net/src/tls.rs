//! TLS 1.3 with pinned device keys (crypto.md, "Transport"): the certificate is a self-signed
//! carrier for the device's Ed25519 key; verification is by DeviceId, never by a CA.
use crate::error::LocalError;
use crate::identity::{DeviceId, DeviceKey};
use crate::members::Members;
use crate::{ALPN, ALPN_DHT, ALPN_JOIN};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) } followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// QUIC keep-alive interval (docs/protocol.md, "Connections").
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// QUIC idle timeout.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The Ed25519 key carried by a certificate, if it carries one.
pub(crate) fn cert_public_key(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = ee.subject_public_key_info();
    let key = spki.as_ref().strip_prefix(ED25519_SPKI_PREFIX.as_slice())?;
    key.try_into().ok()
}

/// The DeviceId a certificate belongs to.
pub(crate) fn cert_device(cert: &CertificateDer<'_>) -> Option<DeviceId> {
    cert_public_key(cert).map(|pk| DeviceId::of_public_key(&pk))
}

/// The peer's DeviceId after a completed handshake.
pub(crate) fn peer_device(conn: &quinn::Connection) -> Option<DeviceId> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    cert_device(certs.first()?)
}

/// The device's certificate chain and private key.
fn credentials(
    key: &DeviceKey,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), LocalError> {
    let pkcs8 = PrivatePkcs8KeyDer::from(key.pkcs8().to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)?;
    let cert = rcgen::CertificateParams::new(vec!["fossa".to_string()])?.self_signed(&kp)?;
    Ok((vec![cert.der().clone()], PrivateKeyDer::Pkcs8(pkcs8)))
}

fn bad_cert() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

fn tls13_only() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

/// Who a server accepts besides current members.
pub(crate) type JoinGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// Where a verifier of one connection records the device whose certificate it refused, so
/// the refusal can be logged with the connection's address.
pub(crate) type RefusedSlot = Arc<parking_lot::Mutex<Option<DeviceId>>>;

fn note_refused(slot: Option<&RefusedSlot>, id: DeviceId) -> rustls::Error {
    if let Some(s) = slot {
        *s.lock() = Some(id);
    }
    bad_cert()
}

/// Verifies a client: a current member, or anyone while `join_open()` (an invitation is
/// pending; such a connection is then only served on the join ALPN).
struct ClientVerifier {
    accept: Accept,
    algs: WebPkiSupportedAlgorithms,
    refused: Option<RefusedSlot>,
}

/// Whose certificate a server accepts.
enum Accept {
    /// Current members, and anyone while `join_open()` (the sync and join ALPNs).
    Members {
        members: Arc<Members>,
        join_open: JoinGate,
    },
    /// Any valid node key: the swarm (ALPN `fossa/dht/1`) admits by ticket after the
    /// handshake, in `SwarmHello` (docs/swarm.md).
    AnyNode,
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientVerifier")
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let id = cert_device(end_entity).ok_or_else(bad_cert)?;
        let accepted = match &self.accept {
            Accept::AnyNode => true,
            Accept::Members { members, join_open } => members.is_member(&id) || join_open(),
        };
        if accepted {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(note_refused(self.refused.as_ref(), id))
        }
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls13_only())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Verifies a server: the pinned device if given, and a current member if a list is given.
struct ServerVerifier {
    expected: Option<DeviceId>,
    members: Option<Arc<Members>>,
    algs: WebPkiSupportedAlgorithms,
    refused: Option<RefusedSlot>,
}

impl std::fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerVerifier")
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let id = cert_device(end_entity).ok_or_else(bad_cert)?;
        if self.expected.is_some_and(|e| e != id) {
            return Err(bad_cert());
        }
        if self.members.as_ref().is_some_and(|m| !m.is_member(&id)) {
            return Err(note_refused(self.refused.as_ref(), id));
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls13_only())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Connection-level QUIC receive window (flow control), in bytes.
const RECEIVE_WINDOW: u32 = 8 << 20;

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // 30 s fits the VarInt range.
    if let Ok(idle) = IDLE_TIMEOUT.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    // Unread data a connection may hold. Unbounded, a sender faster than its receiver filled
    // the receiver's socket buffer until datagrams were dropped, and each loss halved the
    // congestion window; 8 MiB (the socket buffer's size) still allows ~160 MB/s at 50 ms of
    // round trip.
    t.receive_window(quinn::VarInt::from_u32(RECEIVE_WINDOW));
    Arc::new(t)
}

/// The server side of a swarm node: ALPN `fossa/dht/1`, any node key (admission is by
/// ticket, after the handshake).
pub(crate) fn swarm_server_config(key: &DeviceKey) -> Result<quinn::ServerConfig, LocalError> {
    let (certs, pk) = credentials(key)?;
    server_config_with(Accept::AnyNode, None, certs, pk, &[ALPN_DHT])
}

/// A server configuration: TLS 1.3 only, clients verified by `accept`, offering `alpns`.
fn server_config_with(
    accept: Accept,
    refused: Option<RefusedSlot>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpns: &[&[u8]],
) -> Result<quinn::ServerConfig, LocalError> {
    let provider = provider();
    let verifier = ClientVerifier {
        accept,
        algs: provider.signature_verification_algorithms,
        refused,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|_| LocalError::Tls(rustls::Error::General("no TLS 1.3 suite".into())))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport());
    Ok(cfg)
}

/// The server side: both ALPNs, members always, anyone while `join_open()`. Holds the
/// credentials so that a configuration per connection costs no certificate.
pub(crate) struct ServerTls {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    members: Arc<Members>,
    join_open: JoinGate,
}

impl ServerTls {
    pub(crate) fn new(
        key: &DeviceKey,
        members: Arc<Members>,
        join_open: JoinGate,
    ) -> Result<Self, LocalError> {
        let (certs, key) = credentials(key)?;
        Ok(ServerTls {
            certs,
            key,
            members,
            join_open,
        })
    }
    /// A configuration whose verifier records a refused client's DeviceId in `refused`.
    pub(crate) fn config(
        &self,
        refused: Option<RefusedSlot>,
    ) -> Result<quinn::ServerConfig, LocalError> {
        let accept = Accept::Members {
            members: self.members.clone(),
            join_open: self.join_open.clone(),
        };
        server_config_with(
            accept,
            refused,
            self.certs.clone(),
            self.key.clone_key(),
            &[ALPN, ALPN_JOIN],
        )
    }
}

/// The server side (see [`ServerTls`]) without a refusal slot.
pub(crate) fn server_config(
    key: &DeviceKey,
    members: Arc<Members>,
    join_open: JoinGate,
) -> Result<quinn::ServerConfig, LocalError> {
    ServerTls::new(key, members, join_open)?.config(None)
}

/// A client configuration for one connection: ALPN `alpn`, server pinned to `expected` (if
/// given) and required to be a current member of `members` (if given).
pub(crate) fn client_config(
    key: &DeviceKey,
    expected: Option<DeviceId>,
    members: Option<Arc<Members>>,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, LocalError> {
    client_config_noting(key, expected, members, alpn, None)
}

/// [`client_config`] whose verifier records, in `refused`, a server it refused for not being
/// a member.
pub(crate) fn client_config_noting(
    key: &DeviceKey,
    expected: Option<DeviceId>,
    members: Option<Arc<Members>>,
    alpn: &[u8],
    refused: Option<RefusedSlot>,
) -> Result<quinn::ClientConfig, LocalError> {
    let provider = provider();
    let algs = provider.signature_verification_algorithms;
    let verifier = ServerVerifier {
        expected,
        members,
        algs,
        refused,
    };
    let (certs, pk) = credentials(key)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(certs, pk)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|_| LocalError::Tls(rustls::Error::General("no TLS 1.3 suite".into())))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport());
    Ok(cfg)
}

/// A raw QUIC client configuration presenting `key` and pinning the server to `expected`, for
/// tools and tests that speak the wire protocol directly.
pub fn raw_client_config(
    key: &DeviceKey,
    expected: DeviceId,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, LocalError> {
    client_config(key, Some(expected), None, alpn)
}

/// A raw QUIC server configuration presenting `key` and accepting current members of
/// `members` only (no joiners), for tools and tests that speak the wire protocol directly.
pub fn raw_server_config(
    key: &DeviceKey,
    members: Arc<Members>,
) -> Result<quinn::ServerConfig, LocalError> {
    server_config(key, members, Arc::new(|| false))
}

/// A QUIC endpoint bound to `addr` with fossa's socket buffers, accepting connections with
/// `server` if given (the one every node uses; tools and tests get the same sockets).
pub fn quic_endpoint(
    addr: std::net::SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, LocalError> {
    Ok(quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        udp_socket(addr)?,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// Socket buffer asked for on QUIC sockets (the kernel caps it at `net.core.rmem_max` /
/// `wmem_max`). The default, ~208 KiB, overflows under a bulk transfer: on loopback a pull of
/// 512 MiB lost ~280 batches of datagrams to full receive buffers, and every loss halves the
/// congestion window. The MTU is left alone (quinn's defaults).
const SOCKET_BUFFER: usize = 8 << 20;

/// A UDP socket bound to `addr` for a QUIC endpoint, with large socket buffers.
fn udp_socket(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, only slower.
    for (what, r) in [
        ("receive", s.set_recv_buffer_size(SOCKET_BUFFER)),
        ("send", s.set_send_buffer_size(SOCKET_BUFFER)),
    ] {
        if let Err(e) = r {
            tracing::debug!(error = %e, "could not enlarge the {what} buffer of the QUIC socket");
        }
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_device_key() {
        let key = DeviceKey::generate().unwrap();
        let (certs, _) = credentials(&key).unwrap();
        assert_eq!(cert_public_key(&certs[0]), Some(key.public_key()));
        assert_eq!(cert_device(&certs[0]), Some(key.id()));
        assert_eq!(cert_device(&CertificateDer::from(vec![1, 2, 3])), None);
    }
}
