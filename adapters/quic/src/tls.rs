//! The TLS 1.3 side of QUIC: each node's throw-away certificate, and a
//! verifier that accepts any certificate but still checks the handshake
//! signature made with its key.
//!
//! TLS does not authenticate the peer here: the veil link handshake inside
//! the stream (Noise `XX` bound to the Ed25519 identity) does. TLS only has
//! to give an encrypted, forward-secret channel whose far end holds the
//! private key of the certificate it showed. See `docs/quic.md` for why that
//! is safe and what it costs.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::SetupError;

/// Days a certificate is valid, counted from a random day up to this many
/// days before it was made: a lifetime like a common short-lived web
/// certificate, not rcgen's recognisable 1975–4096 default.
const CERT_LIFETIME_DAYS: u64 = 90;

/// A node's certificate and its private key (DER).
pub(crate) struct NodeCertificate {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCertificate").finish_non_exhaustive()
    }
}

/// The crypto provider every config uses: ring, TLS 1.3 suites only, and
/// private keys loaded as ECDSA only ([`EcdsaKeys`]).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.key_provider = &EcdsaKeys;
    Arc::new(provider)
}

/// Loads private keys as ECDSA keys and nothing else. The only key a node
/// ever loads is its own certificate's P-256 key. ring's default loader
/// also tries RSA and Ed25519, which links ring's RSA signing (its
/// modular arithmetic, blinding and PSS and PKCS#1 padding) into a binary
/// that never signs with RSA. Nothing on the wire changes: the server
/// signs with the same P-256 key, and the client offers and accepts the
/// same signature schemes as before.
#[derive(Debug)]
struct EcdsaKeys;

impl rustls::crypto::KeyProvider for EcdsaKeys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        rustls::crypto::ring::sign::any_ecdsa_type(&key_der)
    }
}

/// Makes a fresh self-signed ECDSA P-256 certificate: empty subject, no
/// subject alternative names, a random 16-byte serial, valid for
/// [`CERT_LIFETIME_DAYS`] around now. Nothing in it names veil or the node.
pub(crate) fn generate_certificate() -> Result<NodeCertificate, SetupError> {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| SetupError::Certificate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| SetupError::Certificate(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| SetupError::Certificate(e.to_string()))?;
    // A positive serial without a leading zero byte, like most CAs issue.
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let mut jitter = [0u8; 1];
    getrandom::fill(&mut jitter).map_err(|e| SetupError::Certificate(e.to_string()))?;
    let start = today.saturating_sub(u64::from(jitter[0]) % 30 + 1);
    let (y, m, d) = civil_from_days(start);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(start.saturating_add(CERT_LIFETIME_DAYS));
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| SetupError::Certificate(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    Ok(NodeCertificate {
        chain: vec![cert.der().clone()],
        key,
    })
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (i32, u8, u8) {
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// Accepts whatever certificate the server shows, but checks that the
/// server signed the handshake transcript with that certificate's key
/// (TLS 1.3 `CertificateVerify`), so the channel ends at whoever holds the
/// key, and the ECDHE key exchange (forward secrecy) is signed over.
///
/// The peer's veil identity is authenticated inside, by the link handshake.
#[derive(Debug)]
pub(crate) struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyCertificate {
    pub(crate) fn new(provider: &CryptoProvider) -> Self {
        AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Deliberately no chain, name or validity check: the certificate is
        // not what authenticates the peer (see the module docs).
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // QUIC is TLS 1.3 only; a TLS 1.2 signature can never be valid here.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls client config: TLS 1.3, the given ALPN, no SNI, no client
/// certificate, [`AnyCertificate`].
pub(crate) fn client_config(alpn: &[u8]) -> Result<rustls::ClientConfig, SetupError> {
    let provider = provider();
    let verifier = Arc::new(AnyCertificate::new(&provider));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    // No server name in the ClientHello: there is no name to give, and a
    // fixed one would be a fingerprint.
    config.enable_sni = false;
    // No session resumption: a ticket would let a server link our
    // connections to each other across addresses.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The rustls server config: TLS 1.3, the given ALPN (a client offering
/// anything else fails the handshake), the node's certificate, and no
/// client certificate requested.
pub(crate) fn server_config(
    alpn: &[u8],
    cert: NodeCertificate,
) -> Result<rustls::ServerConfig, SetupError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .map_err(|e| SetupError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    // No tickets: nothing to resume (clients never resume), and none to link
    // a client's connections by.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    // 0-RTT is never accepted: 0-RTT data can be replayed.
    config.max_early_data_size = 0;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    /// The provider loads the node's own P-256 key, and refuses any other
    /// kind (ring's default loader would take this Ed25519 key): only the
    /// ECDSA signing code is reachable.
    #[test]
    fn only_ecdsa_keys_load() {
        let keys = provider().key_provider;
        let own = generate_certificate().unwrap();
        assert!(keys.load_private_key(own.key).is_ok());
        let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed25519 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ed25519.serialize_der()));
        assert!(rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(ed25519.clone_key())
            .is_ok());
        assert!(keys.load_private_key(ed25519).is_err());
    }

    #[test]
    fn certificate_names_nothing() {
        let cert = generate_certificate().unwrap();
        let der = cert.chain[0].as_ref();
        for needle in [&b"veil"[..], b"rcgen", b"self signed"] {
            assert!(
                !der.windows(needle.len()).any(|w| w == needle),
                "certificate contains {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
}
