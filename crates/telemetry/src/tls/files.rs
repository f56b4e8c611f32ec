//! The TLS variables of one signal, resolved and checked at start-up: each
//! file read once and parsed, so that a wrong path or a file of the wrong
//! kind stops the service naming the variable, instead of failing every
//! export later with a handshake error.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TelemetryError;

/// The variables of one signal: the signal's own name first, then the
/// generic one it falls back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsVars {
    pub certificate: [&'static str; 2],
    pub client_certificate: [&'static str; 2],
    pub client_key: [&'static str; 2],
}

/// How an `https://` endpoint's server is verified and how this process
/// proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The CA to trust instead of the system's store; `None`: the system's.
    pub ca: Option<PemFile>,
    /// Client certificate and key for mutual TLS.
    pub client: Option<ClientIdentity>,
}

/// A PEM file named by a variable, as read at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The variable that named it (the signal's own or the generic one).
    pub var: &'static str,
    pub path: String,
    pub(crate) pem: Vec<u8>,
}

/// The contents stay out of `Debug`: one of these files is a private key.
impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemFile")
            .field("var", &self.var)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A client certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub certificate: PemFile,
    pub key: PemFile,
}

impl TlsConfig {
    /// Reads the variables of one signal. Called for `https://` endpoints
    /// only: with `http://` the variables do not apply.
    pub(crate) fn from_lookup(
        vars: TlsVars,
        non_empty: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let ca = read(vars.certificate, non_empty, Kind::TrustedCertificates)?;
        let certificate = read(vars.client_certificate, non_empty, Kind::Chain)?;
        let key = read(vars.client_key, non_empty, Kind::PrivateKey)?;
        let client = match (certificate, key) {
            (Some(certificate), Some(key)) => Some(ClientIdentity { certificate, key }),
            (None, None) => None,
            (Some(given), None) => return Err(half_identity(&given, vars.client_key[1])),
            (None, Some(given)) => return Err(half_identity(&given, vars.client_certificate[1])),
        };
        Ok(Self { ca, client })
    }

    /// For the start-up log line: what the server is verified against.
    pub fn describe(&self) -> String {
        let trust = match &self.ca {
            Some(ca) => format!("CA of {}", ca.var),
            None => "the system's CA store".to_owned(),
        };
        match &self.client {
            Some(id) => format!("{trust}, client certificate of {}", id.certificate.var),
            None => trust,
        }
    }
}

fn half_identity(given: &PemFile, missing: &'static str) -> TelemetryError {
    TelemetryError::InvalidEnv {
        var: given.var,
        value: given.path.clone(),
        reason: format!("mutual TLS needs the client's certificate and key: {missing} is not set"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// CA certificates, to trust: each checked as a trust anchor.
    TrustedCertificates,
    /// The client's chain: checked with its key when the identity is built.
    Chain,
    PrivateKey,
}

/// The file named by the first variable set, read and checked.
fn read(
    vars: [&'static str; 2],
    non_empty: &impl Fn(&str) -> Option<String>,
    kind: Kind,
) -> Result<Option<PemFile>, TelemetryError> {
    let Some((var, path)) = vars
        .iter()
        .find_map(|var| non_empty(var).map(|v| (*var, v.trim().to_owned())))
    else {
        return Ok(None);
    };
    let bad = |reason: String| TelemetryError::InvalidEnv {
        var,
        value: path.clone(),
        reason,
    };
    let pem = std::fs::read(&path).map_err(|e| bad(format!("the file cannot be read: {e}")))?;
    match kind {
        Kind::TrustedCertificates => {
            trust_anchors(&certificates(&pem).map_err(bad)?).map_err(bad)?;
        }
        Kind::Chain => {
            certificates(&pem).map_err(bad)?;
        }
        Kind::PrivateKey => {
            PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                bad(format!(
                    "no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in the file: {e}"
                ))
            })?;
        }
    }
    Ok(Some(PemFile { var, path, pem }))
}

/// Every `CERTIFICATE` block of a PEM file; at least one.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))?;
    if certificates.is_empty() {
        return Err("no PEM CERTIFICATE block in the file".to_owned());
    }
    Ok(certificates)
}

/// The certificates as a trust store: each must parse as an X.509 CA
/// certificate, so that a truncated or foreign block is caught here.
pub(crate) fn trust_anchors(
    certificates: &[CertificateDer<'static>],
) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for (n, certificate) in certificates.iter().enumerate() {
        roots.add(certificate.clone()).map_err(|e| {
            format!(
                "certificate {} of the file is not a usable X.509 certificate: {e}",
                n + 1
            )
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const VARS: TlsVars = TlsVars {
        certificate: [
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        ],
        client_certificate: [
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ],
        client_key: [
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ],
    };

    struct Files {
        dir: std::path::PathBuf,
    }

    impl Files {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("telemetry-tls-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self { dir }
        }

        fn write(&self, name: &str, contents: &str) -> String {
            let path = self.dir.join(name);
            std::fs::write(&path, contents).unwrap();
            path.to_string_lossy().into_owned()
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn resolve(vars: &[(&str, &str)]) -> Result<TlsConfig, TelemetryError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TlsConfig::from_lookup(VARS, &|k: &str| map.get(k).cloned())
    }

    fn ca_and_client() -> (String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        (ca.pem(), client_key.serialize_pem())
    }

    #[test]
    fn nothing_set_trusts_the_system_store_without_identity() {
        let tls = resolve(&[]).unwrap();
        assert_eq!(tls.ca, None);
        assert_eq!(tls.client, None);
        assert_eq!(tls.describe(), "the system's CA store");
    }

    #[test]
    fn the_signals_own_certificate_wins_and_is_read() {
        let files = Files::new("wins");
        let (ca, _) = ca_and_client();
        let good = files.write("ca.pem", &ca);
        let tls = resolve(&[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ignored.pem"),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &good),
        ])
        .unwrap();
        let file = tls.ca.unwrap();
        assert_eq!(file.var, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE");
        assert_eq!(file.pem, ca.as_bytes());
    }

    #[test]
    fn unreadable_or_non_pem_files_name_the_variable() {
        let files = Files::new("bad");
        let (_, key) = ca_and_client();
        let not_pem = files.write("notes.txt", "this is not a certificate\n");
        let key_file = files.write("key.pem", &key);
        let garbage_block = files.write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        for (vars, var, says) in [
            (
                vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")],
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                "cannot be read",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", not_pem.as_str())],
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                "no PEM CERTIFICATE",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", key_file.as_str())],
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "no PEM CERTIFICATE",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", garbage_block.as_str())],
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                "not a usable X.509 certificate",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", key_file.as_str()),
                    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", key_file.as_str()),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "no PEM CERTIFICATE",
            ),
            (
                vec![
                    (
                        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                        garbage_block.as_str(),
                    ),
                    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", not_pem.as_str()),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                "no PEM private key",
            ),
        ] {
            let error = resolve(&vars).unwrap_err().to_string();
            assert!(error.starts_with(var), "{error} should name {var}");
            assert!(error.contains(says), "{error} should say {says}");
        }
    }

    #[test]
    fn a_client_certificate_without_its_key_is_a_mistake() {
        let files = Files::new("half");
        let (ca, key) = ca_and_client();
        let certificate = files.write("client.pem", &ca);
        let key = files.write("client.key", &key);
        let error = resolve(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &certificate)])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
                && error.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY is not set"),
            "{error}"
        );
        let error = resolve(&[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", &key)])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY")
                && error.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is not set"),
            "{error}"
        );
        let tls = resolve(&[
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &certificate),
            ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", &key),
        ])
        .unwrap();
        let id = tls.client.unwrap();
        assert_eq!(id.key.var, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY");
        assert!(!format!("{id:?}").contains("PRIVATE"), "no key in Debug");
    }
}
