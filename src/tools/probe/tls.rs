//! The probe's TLS client (rustls) and what it reports of a `turns:` server: the certificate
//! chain's subjects and issuers (RFC 5280 §4.1), the leaf's names (subjectAltName, §4.2.1.6),
//! days to expiry, whether the chain is trusted for the URL's host, the protocol version and the
//! ALPN protocol (`stun.turn`, RFC 7443).

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use rustls::{Error as TlsError, SignatureScheme};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// The ALPN protocol of STUN and TURN over TLS (RFC 7443 §6).
pub const ALPN: &[u8] = b"stun.turn";

/// CA bundles of the usual Linux distributions, after `SSL_CERT_FILE`.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Verifies the server's chain as a browser would, but records the verdict instead of failing
/// the handshake: the probe reports an untrusted certificate and decides itself whether to go
/// on (only with `--insecure`).
#[derive(Debug)]
struct Recording {
    webpki: Result<Arc<WebPkiServerVerifier>, String>,
    provider: Arc<CryptoProvider>,
    verdict: Arc<Mutex<Option<Result<(), String>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let verdict = match &self.webpki {
            Ok(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map(drop)
                .map_err(|e| untrusted_why(&e)),
            Err(e) => Err(e.clone()),
        };
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    // The handshake signatures are always checked: the server must hold the key of the
    // certificate it showed, trusted or not.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration offering `stun.turn`, and where its verifier leaves its verdict.
pub struct Client {
    pub config: Arc<ClientConfig>,
    verdict: Arc<Mutex<Option<Result<(), String>>>>,
}

impl Client {
    /// Trusts the system's CA bundle and the PEM certificates in `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<Client, String> {
        let mut roots = RootCertStore::empty();
        let system = std::env::var_os("SSL_CERT_FILE")
            .map(std::path::PathBuf::from)
            .into_iter()
            .chain(BUNDLES.iter().map(std::path::PathBuf::from))
            .find(|p| p.is_file());
        if let Some(bundle) = system {
            if let Ok(certs) = CertificateDer::pem_file_iter(&bundle) {
                roots.add_parsable_certificates(certs.flatten());
            }
        }
        if let Some(file) = ca_file {
            let certs: Vec<_> = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read --ca {}: {e}", file.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("--ca {}: no certificate in it", file.display()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = if roots.is_empty() {
            Err("no trusted CA certificates (no system bundle; use --ca FILE)".to_owned())
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| e.to_string())
        };
        let verdict = Arc::new(Mutex::new(None));
        let verifier = Recording {
            webpki,
            provider: Arc::clone(&provider),
            verdict: Arc::clone(&verdict),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Client {
            config: Arc::new(config),
            verdict,
        })
    }

    /// The SNI name and verification name for `host`: a DNS name or an IP address.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
            Err(_) => ServerName::try_from(host.to_owned())
                .map_err(|_| format!("{host:?} is not a valid TLS server name")),
        }
    }

    /// What the last handshake showed.
    pub fn report(&self, conn: &ClientConnection, unix_now: u64) -> TlsReport {
        let trust = self
            .verdict
            .lock()
            .ok()
            .and_then(|v| v.clone())
            .unwrap_or_else(|| Err("the certificate was not verified".into()));
        let chain: Vec<CertInfo> = conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| CertInfo::parse(c))
            .collect();
        let days_left = chain.first().and_then(|leaf| {
            let after = i64::try_from(leaf.not_after?).ok()?;
            Some((after - i64::try_from(unix_now).ok()?).div_euclid(86_400))
        });
        TlsReport {
            version: conn
                .protocol_version()
                .map_or_else(|| "unknown".into(), version_name),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            trust,
            chain,
            days_left,
        }
    }
}

/// Why a chain is not trusted, in an operator's words where the cause is a usual one.
fn untrusted_why(e: &TlsError) -> String {
    use rustls::CertificateError as C;
    let TlsError::InvalidCertificate(c) = e else {
        return e.to_string();
    };
    match c {
        C::UnknownIssuer => {
            "not issued by a trusted CA (self-signed, or a private CA: --ca FILE)".into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "not valid for the URL's host (its names do not include it)".into()
        }
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
        C::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
            "a CA certificate used as the server's own (self-signed with CA:TRUE)".into()
        }
        other => format!("{other:?}"),
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        other => format!("{other:?}"),
    }
}

pub struct TlsReport {
    pub version: String,
    pub alpn: Option<String>,
    pub cipher: Option<String>,
    /// Ok when the chain leads to a trusted CA and names the URL's host.
    pub trust: Result<(), String>,
    /// Leaf first, as the server sent it.
    pub chain: Vec<CertInfo>,
    /// Whole days until the leaf expires (negative once expired).
    pub days_left: Option<i64>,
}

/// One certificate of the chain; fields the DER did not yield are empty.
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// subjectAltName DNS names and IP addresses.
    pub names: Vec<String>,
    /// notAfter in Unix seconds.
    pub not_after: Option<u64>,
}

impl CertInfo {
    fn parse(der: &CertificateDer<'_>) -> CertInfo {
        let Ok(cert) = Certificate::from_der(der.as_ref()) else {
            return CertInfo {
                subject: "(unparsable certificate)".into(),
                issuer: String::new(),
                names: Vec::new(),
                not_after: None,
            };
        };
        let tbs = &cert.tbs_certificate;
        let san = tbs
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == x509_cert::ext::pkix::ID_CE_SUBJECT_ALT_NAME)
            .and_then(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok());
        let names = san
            .map(|s| s.0.iter().filter_map(general_name).collect())
            .unwrap_or_default();
        CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            names,
            not_after: Some(tbs.validity.not_after.to_unix_duration().as_secs()),
        }
    }
}

fn general_name(n: &GeneralName) -> Option<String> {
    match n {
        GeneralName::DnsName(d) => Some(d.to_string()),
        GeneralName::IpAddress(ip) => match ip.as_bytes().len() {
            4 => <[u8; 4]>::try_from(ip.as_bytes())
                .ok()
                .map(|b| IpAddr::from(b).to_string()),
            16 => <[u8; 16]>::try_from(ip.as_bytes())
                .ok()
                .map(|b| IpAddr::from(b).to_string()),
            _ => None,
        },
        _ => None,
    }
}
