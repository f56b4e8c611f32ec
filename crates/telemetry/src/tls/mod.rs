//! OTLP export over TLS: `https://` endpoints for spans and metrics, over
//! gRPC and OTLP/HTTP.
//!
//! A collector on the same host is reached over plain `http://`; a gateway
//! shared by many teams is not, and its auth token
//! (`OTEL_EXPORTER_OTLP_HEADERS`) must not cross the network in clear. The
//! variables are the OTLP exporter specification's, each with a per-signal
//! variant that wins over the generic one:
//!
//! - `OTEL_EXPORTER_OTLP_(TRACES_|METRICS_)CERTIFICATE`: PEM file of the CA
//!   to trust *instead of* the system's store (a private CA in front of the
//!   gateway). Unset, the system's store is used, read by
//!   `rustls-native-certs` (the `SSL_CERT_FILE`/`SSL_CERT_DIR` and
//!   `/etc/ssl/certs` that curl and the collector itself trust): a CA the
//!   operator installed is trusted without rebuilding the binary, which a
//!   compiled-in list (`webpki-roots`) would not do.
//! - `OTEL_EXPORTER_OTLP_(TRACES_|METRICS_)CLIENT_CERTIFICATE` and
//!   `_CLIENT_KEY`: the client's certificate chain and private key (PEM) for
//!   mutual TLS; both or neither.
//!
//! They apply to `https://` endpoints only (the specification: "should only
//! be used for a secure connection"): with an `http://` endpoint they are
//! not read at all. A file that cannot be read or holds no PEM certificate
//! (or key) stops the start naming the variable; a server whose certificate
//! is not trusted is an export failure like any other, logged with its
//! reason and retried.
//!
//! The cryptography is rustls with the `ring` provider: no OpenSSL to find
//! at build or run time, no C library build beyond ring's few files.
//! gRPC goes through tonic's own rustls connector ([`tonic_config`]);
//! OTLP/HTTP through [`HttpsClient`] (hyper with hyper-rustls), because
//! reqwest 0.13's rustls support brings the aws-lc provider.

mod files;
mod https_client;
mod trust;

pub(crate) use files::TlsVars;
pub use files::{ClientIdentity, PemFile, TlsConfig};
pub(crate) use https_client::HttpsClient;

use std::time::Duration;

use thiserror::Error;

/// Why the TLS set-up of an `https://` endpoint cannot be built. Each names
/// the variable to change.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error(
        "no CA certificate found in the system's store (SSL_CERT_FILE, SSL_CERT_DIR, \
         /etc/ssl/certs) to verify the https:// endpoint; install the CA certificates \
         or name the CA's PEM file in {var}"
    )]
    NoSystemRoots { var: &'static str },
    #[error("{certificate_var} and {key_var} are not a usable client identity: {reason}")]
    ClientIdentity {
        certificate_var: &'static str,
        key_var: &'static str,
        reason: String,
    },
    #[error("could not build the TLS configuration: {0}")]
    Config(String),
    #[error("could not start the OTLP/HTTPS client's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// tonic's TLS configuration for an `https://` gRPC endpoint, after
/// building the same trust with rustls here: tonic would report an empty
/// system store or a client key that does not match its certificate only as
/// an opaque error at its first connection. `ca_var` is the variable an
/// empty store's error points to.
pub(crate) fn checked_tonic_config(
    tls: &TlsConfig,
    ca_var: &'static str,
) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    trust::rustls_config(tls, ca_var)?;
    Ok(trust::tonic_config(tls))
}

/// The client for an `https://` OTLP/HTTP endpoint ([`HttpsClient::new`]).
pub(crate) fn https_client(
    tls: &TlsConfig,
    ca_var: &'static str,
    timeout: Duration,
    headers: http::HeaderMap,
    log_failures: Option<&'static str>,
) -> Result<HttpsClient, TlsError> {
    let config = trust::rustls_config(tls, ca_var)?;
    HttpsClient::new(config, timeout, headers, log_failures)
}

/// A failed export's reason, shortened to what matters when the client
/// refused the server's certificate (rustls's `invalid peer certificate:
/// UnknownIssuer` names neither the cause in words nor the variable that
/// fixes it), so that it fits a log field.
pub(crate) fn explain(reason: String) -> String {
    const REFUSED: &str = "invalid peer certificate: ";
    let Some(at) = reason.find(REFUSED) else {
        return reason;
    };
    let detail = reason[at + REFUSED.len()..].trim();
    if detail.starts_with("UnknownIssuer") {
        "the server's certificate is not trusted (UnknownIssuer): name its CA's PEM file in \
         OTEL_EXPORTER_OTLP_CERTIFICATE"
            .to_owned()
    } else {
        format!("the server's certificate is refused: {detail}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_certificate_is_said_in_words_with_the_variable() {
        let grpc =
            "export failed with gRPC code Unavailable: invalid peer certificate: UnknownIssuer";
        let said = super::explain(grpc.to_owned());
        assert!(said.contains("not trusted") && said.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"));
        assert!(said.chars().count() <= 128, "fits a log field: {said}");
        let expired = "export failed: client error (Connect): invalid peer certificate: Expired";
        assert_eq!(
            super::explain(expired.to_owned()),
            "the server's certificate is refused: Expired"
        );
        let refused = "export failed: Connection refused".to_owned();
        assert_eq!(super::explain(refused.clone()), refused);
    }
}
