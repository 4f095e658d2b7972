//! TLS for stream clients (RFC 8656 §3.1 TURN over TLS, ALPN names of RFC 7443): the rustls
//! server configuration built from `cert`/`pkey`/`CA-file`/`cipher-list`/`no-tlsv1_2`, the
//! choice of ALPN per ClientHello, and the reload (SIGUSR2/SIGHUP) for new connections while
//! established ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring::default_provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, WebPkiClientVerifier};
use rustls::{CipherSuite, RootCertStore, ServerConfig, SupportedCipherSuite};

use crate::config::Config;

/// ALPN protocol names for TURN and STUN (RFC 7443 §6).
const ALPN: [&[u8]; 2] = [b"stun.turn", b"stun.nat-discovery"];

/// Why TLS could not be set up; the message names the files and the options to fix it.
#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the configuration asks of TLS, kept to rebuild the configuration on reload.
struct Recipe {
    cert: PathBuf,
    pkey: PathBuf,
    /// `CA-file`: clients must present a certificate issued by one of its CAs.
    ca: Option<PathBuf>,
    provider: Arc<CryptoProvider>,
    tls12: bool,
}

/// One build of the server configuration, in two forms: `alpn` offers tern's ALPN names;
/// `plain` offers none, for a client whose ALPN offer holds none of them (a client behind a
/// proxy or on port 443 offering `http/1.1` or `h2`). rustls answers such an offer against a
/// list with a fatal `no_application_protocol` alert; coturn completes the handshake, so tern
/// answers it from a configuration without ALPN.
#[derive(Clone)]
struct Configs {
    alpn: Arc<ServerConfig>,
    plain: Arc<ServerConfig>,
}

/// The server configuration new TLS connections use; swapped on reload.
pub(crate) struct Tls {
    recipe: Recipe,
    current: RwLock<Configs>,
}

/// The outcome of `setup`: TLS, or why there is none.
pub(crate) enum Setup {
    On(Arc<Tls>, Vec<String>),
    /// `no-tls`.
    Off,
    /// Neither `cert` nor `pkey` was configured and the default files are absent: coturn runs
    /// without TLS then; tern does too, but says so loudly (the caller logs the message).
    Missing(String),
}

impl Tls {
    /// The configuration for a connection whose ClientHello is `hello`, accepted now: with ALPN
    /// when the client offers one of tern's names (or none), without it when every name it
    /// offers is unknown to tern.
    pub(crate) fn current(&self, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        let unknown_only = hello
            .alpn()
            .is_some_and(|mut offered| !offered.any(|name| ALPN.contains(&name)));
        if unknown_only {
            Arc::clone(&guard.plain)
        } else {
            Arc::clone(&guard.alpn)
        }
    }

    /// Reads `cert`, `pkey` and `CA-file` again; on success new connections use them.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.recipe)?;
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = config;
        Ok(())
    }
}

/// Builds TLS from the configuration. Explicitly configured files that cannot be loaded are an
/// error (the operator asked for TLS); absent default files are `Setup::Missing`.
pub(crate) fn setup(cfg: &Config) -> Result<Setup, TlsError> {
    if cfg.no_tls {
        return Ok(Setup::Off);
    }
    let defaults = Config::default();
    let configured = cfg.cert != defaults.cert || cfg.pkey != defaults.pkey;
    let (suites, warnings) = cipher_suites(cfg.cipher_list.as_deref());
    let recipe = Recipe {
        cert: locate(&cfg.cert),
        pkey: locate(&cfg.pkey),
        provider: Arc::new(CryptoProvider {
            cipher_suites: suites,
            ..default_provider()
        }),
        ca: cfg.ca_file.as_deref().map(locate),
        tls12: !cfg.no_tlsv1_2,
    };
    if !configured && !recipe.cert.is_file() && !recipe.pkey.is_file() {
        return Ok(Setup::Missing(format!(
            "TLS IS OFF: no certificate: neither cert nor pkey is set and the default files \
             {} and {} do not exist; turns: URLs will not work. Set cert=PATH and pkey=PATH \
             (PEM), or no-tls to silence this",
            cfg.cert.display(),
            cfg.pkey.display()
        )));
    }
    let config = build(&recipe)?;
    Ok(Setup::On(
        Arc::new(Tls {
            recipe,
            current: RwLock::new(config),
        }),
        warnings,
    ))
}

/// coturn looks for relative certificate names where it looks for its configuration file.
fn locate(path: &Path) -> PathBuf {
    crate::config::find_config_file(path).unwrap_or_else(|| path.to_path_buf())
}

/// The CAs of `CA-file` at `path` (found where configuration files are): every certificate of
/// the PEM file. An unreadable file, or one without a usable certificate, is an error naming it.
pub(crate) fn client_roots(path: &Path) -> Result<RootCertStore, String> {
    let path = locate(path);
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE block in the file",
            path.display()
        ));
    }
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(format!(
            "{}: none of its {unusable} certificate(s) can serve as a CA",
            path.display()
        ));
    }
    Ok(roots)
}

fn build(recipe: &Recipe) -> Result<Configs, TlsError> {
    let fix = "set cert=PATH and pkey=PATH to readable PEM files, or no-tls";
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&recipe.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TlsError(format!(
                "cert {}: cannot read a PEM certificate chain: {e}; {fix}",
                recipe.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "cert {}: no CERTIFICATE block in the file; {fix}",
            recipe.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&recipe.pkey).map_err(|e| {
        TlsError(format!(
            "pkey {}: cannot read a PEM private key: {e}; {fix}",
            recipe.pkey.display()
        ))
    })?;
    let versions: &[&rustls::SupportedProtocolVersion] = if recipe.tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&recipe.provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(format!("cipher-list: {e}")))?;
    let builder = match &recipe.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = client_roots(ca).map_err(|e| TlsError(format!("CA-file {e}")))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::clone(&recipe.provider),
            )
            .build()
            .map_err(|e| TlsError(format!("CA-file {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let plain = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError(format!(
            "cert {} / pkey {}: {e}; {fix}",
            recipe.cert.display(),
            recipe.pkey.display()
        ))
    })?;
    let mut alpn = plain.clone();
    alpn.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Configs {
        alpn: Arc::new(alpn),
        plain: Arc::new(plain),
    })
}

/// OpenSSL names of the suites rustls offers.
const NAMES: [(&str, CipherSuite); 9] = [
    (
        "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// OpenSSL cipher-string words that name groups of what rustls offers.
fn group(word: &str, name: &str) -> Option<bool> {
    let tls13 = name.starts_with("TLS_");
    Some(match word {
        "DEFAULT" | "ALL" | "HIGH" | "SECURE" | "COMPLEMENTOFDEFAULT" => true,
        "ECDHE" | "EECDH" | "kECDHE" | "TLSv1.2" | "AEAD" => !tls13,
        "ECDSA" | "aECDSA" => name.contains("-ECDSA-"),
        "RSA" | "aRSA" | "kRSA" => name.contains("-RSA-"),
        "AESGCM" | "AES" => !tls13 && name.contains("-AES"),
        "AES128" => !tls13 && name.contains("AES128"),
        "AES256" => !tls13 && name.contains("AES256"),
        "CHACHA20" => !tls13 && name.contains("CHACHA20"),
        "SHA256" => name.ends_with("SHA256"),
        "SHA384" => name.ends_with("SHA384"),
        _ => return None,
    })
}

/// The suites `word` (a suite name or groups joined by `+`) selects; None for a word tern does
/// not know.
fn matching(word: &str) -> Option<Vec<&'static str>> {
    if let Some((name, _)) = NAMES.iter().find(|(n, _)| *n == word) {
        return Some(vec![*name]);
    }
    let mut hits = Vec::new();
    for (name, _) in NAMES {
        let hit = word
            .split('+')
            .map(|part| group(part, name))
            .collect::<Option<Vec<bool>>>()?
            .into_iter()
            .all(|b| b);
        if hit {
            hits.push(name);
        }
    }
    Some(hits)
}

/// Maps `cipher-list` onto rustls' suites. OpenSSL's cipher list governs TLS 1.2 only, so the
/// TLS 1.3 suites stay unless TLS 1.3 names are listed. Exclusions (`!X`, `-X`) of things rustls
/// never offers (aNULL, MD5, RC4, ...) are already true. Returns the suites and one warning for
/// words that could not be honoured.
pub(crate) fn cipher_suites(list: Option<&str>) -> (Vec<SupportedCipherSuite>, Vec<String>) {
    let all = default_provider().cipher_suites;
    let Some(list) = list.map(str::trim).filter(|l| !l.is_empty()) else {
        return (all, Vec::new());
    };
    let mut chosen: Vec<&'static str> = Vec::new();
    let mut ignored: Vec<&str> = Vec::new();
    for word in list.split([':', ',', ' ', ';']).filter(|w| !w.is_empty()) {
        let (exclude, word) = match word.strip_prefix(['!', '-']) {
            Some(rest) => (true, rest),
            None => (false, word.strip_prefix('+').unwrap_or(word)),
        };
        if word.starts_with('@') {
            continue;
        }
        let matches = matching(word);
        match (matches, exclude) {
            (Some(names), false) => {
                for name in names {
                    if !chosen.contains(&name) {
                        chosen.push(name);
                    }
                }
            }
            (Some(names), true) => chosen.retain(|n| !names.contains(n)),
            (None, false) => ignored.push(word),
            (None, true) => {}
        }
    }
    let mut warnings = Vec::new();
    if !ignored.is_empty() {
        warnings.push(format!(
            "cipher-list: {} not offered by tern's TLS (rustls offers ECDHE with AES-GCM or \
             ChaCha20-Poly1305, and the TLS 1.3 suites); ignored",
            ignored.join(", ")
        ));
    }
    let code = |name: &str| NAMES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
    let codes: Vec<CipherSuite> = chosen.iter().filter_map(|n| code(n)).collect();
    let is13 = |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_));
    let any13 = all
        .iter()
        .filter(|s| is13(s))
        .any(|s| codes.contains(&s.suite()));
    let any12 = all
        .iter()
        .filter(|s| !is13(s))
        .any(|s| codes.contains(&s.suite()));
    if !any12 {
        warnings.push(String::from(
            "cipher-list: selects no TLS 1.2 suite tern offers; TLS 1.2 uses tern's defaults",
        ));
    }
    let suites = all
        .into_iter()
        .filter(|s| {
            let listed = codes.contains(&s.suite());
            if is13(s) {
                listed || !any13
            } else {
                listed || !any12
            }
        })
        .collect();
    (suites, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> (Vec<CipherSuite>, usize) {
        let (suites, warnings) = cipher_suites(Some(list));
        (suites.iter().map(|s| s.suite()).collect(), warnings.len())
    }

    #[test]
    fn default_and_high_keep_every_suite() {
        let all = default_provider().cipher_suites.len();
        assert_eq!(names("DEFAULT").0.len(), all);
        assert_eq!(names("HIGH:!aNULL:!MD5:!RC4").0.len(), all);
        assert_eq!(names("HIGH:!aNULL:!MD5:!RC4").1, 0);
    }

    #[test]
    fn a_named_tls12_suite_limits_tls12_only() {
        let (suites, warnings) = names("ECDHE-RSA-AES256-GCM-SHA384");
        assert_eq!(warnings, 0);
        assert!(suites.contains(&CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384));
        assert!(!suites.contains(&CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
        assert!(suites.contains(&CipherSuite::TLS13_AES_128_GCM_SHA256));
    }

    #[test]
    fn groups_and_exclusions() {
        let (suites, _) = names("EECDH+AESGCM:!AES128");
        assert!(suites.contains(&CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384));
        assert!(!suites.contains(&CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256));
        assert!(!suites.contains(&CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256));
    }

    #[test]
    fn unknown_words_warn_once_and_fall_back() {
        let (suites, warnings) = names("AES128-SHA:DES-CBC3-SHA");
        assert_eq!(suites.len(), default_provider().cipher_suites.len());
        assert_eq!(warnings, 2);
    }
}
