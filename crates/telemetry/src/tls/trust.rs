//! The resolved [`TlsConfig`] as the two TLS stacks want it: a rustls
//! client configuration (OTLP/HTTP, and the check made at start-up for
//! gRPC too) and tonic's `ClientTlsConfig`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::{ClientConfig, RootCertStore};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::files::{certificates, trust_anchors};
use super::{TlsConfig, TlsError};

/// A rustls client configuration with the ring provider, trusting the
/// configured CA (else the system's store) and presenting the client
/// identity if there is one. Built at start-up for every `https://`
/// endpoint, so that an empty system store or a key that does not match
/// its certificate stops the start rather than every export.
pub(crate) fn rustls_config(
    tls: &TlsConfig,
    ca_var: &'static str,
) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(tls, ca_var)?);
    let Some(identity) = &tls.client else {
        return Ok(builder.with_no_client_auth());
    };
    let identity_error = |reason: String| TlsError::ClientIdentity {
        certificate_var: identity.certificate.var,
        key_var: identity.key.var,
        reason,
    };
    let chain = certificates(&identity.certificate.pem).map_err(identity_error)?;
    let key = PrivateKeyDer::from_pem_slice(&identity.key.pem)
        .map_err(|e| identity_error(e.to_string()))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| identity_error(e.to_string()))
}

/// The configured CA alone (the specification's "the trusted
/// certificate"), else every certificate of the system's store.
fn roots(tls: &TlsConfig, ca_var: &'static str) -> Result<RootCertStore, TlsError> {
    if let Some(ca) = &tls.ca {
        // Checked when the variable was read; checked again, not assumed.
        return certificates(&ca.pem)
            .and_then(|c| trust_anchors(&c))
            .map_err(TlsError::Config);
    }
    let native = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        return Err(TlsError::NoSystemRoots { var: ca_var });
    }
    Ok(roots)
}

/// The same trust and identity for tonic's channel (tonic builds its own
/// rustls configuration, with the ring provider of its `tls-ring` feature
/// and the system's store through its `tls-native-roots`).
pub(crate) fn tonic_config(tls: &TlsConfig) -> ClientTlsConfig {
    let config = ClientTlsConfig::new();
    let config = match &tls.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(&ca.pem)),
        None => config.with_native_roots(),
    };
    match &tls.client {
        Some(id) => config.identity(Identity::from_pem(&id.certificate.pem, &id.key.pem)),
        None => config,
    }
}
