//! Test certificates made at test time (rcgen) and a blocking rustls client that trusts them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
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

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A client configuration trusting `cert`, offering `alpn`.
pub fn client_config(cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
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
