//! Test certificates made at test time (rcgen): server certificates, a CA issuing client
//! certificates (`CA-file`), and a blocking rustls client that trusts them and may present one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::TempDir;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM into a fresh
/// directory.
pub struct TestCert {
    pub dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl TestCert {
    pub fn new(tag: &str) -> TestCert {
        let dir = TempDir::new(&format!("cert-{tag}"));
        let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
        let der = write_pair(&cert, &key);
        TestCert {
            dir,
            cert,
            key,
            der,
        }
    }

    /// Replaces the files with a new certificate and key; returns the new certificate.
    pub fn rotate(&mut self) -> CertificateDer<'static> {
        self.der = write_pair(&self.cert, &self.key);
        self.der.clone()
    }

    /// `--cert=...` and `--pkey=...`.
    pub fn args(&self) -> [String; 2] {
        [
            format!("--cert={}", self.cert.display()),
            format!("--pkey={}", self.key.display()),
        ]
    }
}

fn write_pair(cert: &Path, key: &Path) -> CertificateDer<'static> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen");
    // Written to a temporary name and renamed, so a reader sees the old or the new file whole.
    for (path, text) in [
        (cert, certified.cert.pem()),
        (key, certified.key_pair.serialize_pem()),
    ] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write PEM");
        std::fs::rename(&tmp, path).expect("rename PEM");
    }
    certified.cert.der().clone()
}

/// A certificate a TLS client presents, with its key, in DER and as PEM files.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

/// A CA whose PEM file is `file` (for `CA-file`), issuing client certificates.
pub struct TestCa {
    pub dir: TempDir,
    pub file: PathBuf,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new(tag: &str) -> TestCa {
        let dir = TempDir::new(&format!("ca-{tag}"));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("tern test CA {tag}"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let file = dir.path("ca.pem");
        std::fs::write(&file, cert.pem()).expect("write CA");
        TestCa {
            dir,
            file,
            cert,
            key,
        }
    }

    /// `--CA-file=...`.
    pub fn arg(&self) -> String {
        format!("--CA-file={}", self.file.display())
    }

    /// A client certificate issued by this CA, for TLS client authentication.
    pub fn client(&self, name: &str) -> ClientCert {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().expect("client key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign client certificate");
        client_files(&self.dir, name, &cert, &key)
    }
}

/// A self-signed client certificate that no CA issued.
pub fn self_signed_client(dir: &TempDir, name: &str) -> ClientCert {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("rcgen");
    client_files(dir, name, &certified.cert, &certified.key_pair)
}

fn client_files(
    dir: &TempDir,
    name: &str,
    cert: &rcgen::Certificate,
    key: &rcgen::KeyPair,
) -> ClientCert {
    let (cert_pem, key_pem) = (
        dir.path(&format!("{name}.pem")),
        dir.path(&format!("{name}.key")),
    );
    std::fs::write(&cert_pem, cert.pem()).expect("write client certificate");
    std::fs::write(&key_pem, key.serialize_pem()).expect("write client key");
    ClientCert {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
        cert_pem,
        key_pem,
    }
}

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A client configuration trusting `cert`, offering `alpn`.
pub fn client_config(cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    client_config_as(cert, alpn, None)
}

/// A client configuration trusting `cert`, offering `alpn`, presenting `identity` if given.
pub fn client_config_as(
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
    identity: Option<&ClientCert>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone()));
            builder
                .with_client_auth_cert(id.chain.clone(), key)
                .expect("client certificate")
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects over TLS to `addr` as `localhost` and completes the handshake.
pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// The certificate the server presented.
pub fn server_cert(tls: &TlsStream) -> Option<CertificateDer<'static>> {
    tls.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
}

/// Writes and flushes.
pub fn send(tls: &mut TlsStream, bytes: &[u8]) -> std::io::Result<()> {
    tls.write_all(bytes)?;
    tls.flush()
}

/// Reads exactly `n` bytes.
pub fn recv(tls: &mut TlsStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    tls.read_exact(&mut buf)?;
    Ok(buf)
}
