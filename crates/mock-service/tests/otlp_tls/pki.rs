//! A throw-away PKI made at test time: a CA, a server certificate it signs
//! for `localhost` and `127.0.0.1`, a client certificate it signs (mutual
//! TLS), and a second CA that signed nothing (the "wrong" trust store).
//! Written as PEM files into a scratch folder.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct Pki {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    /// A file that is not PEM at all.
    pub not_pem: PathBuf,
    /// The client's certificate and key, signed by `ca`.
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
    /// The server's TLS: any client.
    pub server: Arc<rustls::ServerConfig>,
    /// The server's TLS: only clients with a certificate signed by `ca`.
    pub mutual_server: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_issuer = ca("latency-lab test CA");
        let other = ca("latency-lab unrelated CA");

        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, "otlp gateway");
        let server_key = KeyPair::generate().unwrap();
        let server_cert = params.signed_by(&server_key, &ca_issuer).unwrap();

        let write = |name: &str, contents: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let ca = write("ca.pem", &ca_issuer.pem());
        let other_ca = write("other-ca.pem", &other.pem());
        let not_pem = write("notes.txt", "a certificate should be here\n");

        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "user-service");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key_pair = KeyPair::generate().unwrap();
        let client_cert = params.signed_by(&client_key_pair, &ca_issuer).unwrap();
        let client_certificate = write("client.pem", &client_cert.pem());
        let client_key = write("client.key", &client_key_pair.serialize_pem());

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = |clients: Option<rustls::RootCertStore>| {
            let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap();
            let builder = match clients {
                None => builder.with_no_client_auth(),
                Some(roots) => builder.with_client_cert_verifier(
                    rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    )
                    .build()
                    .unwrap(),
                ),
            };
            let chain = vec![CertificateDer::from(server_cert.der().to_vec())];
            let key = PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap();
            let mut server = builder.with_single_cert(chain, key).unwrap();
            // gRPC clients insist on h2; OTLP/HTTP clients speak HTTP/1.1.
            server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Arc::new(server)
        };
        let mut clients = rustls::RootCertStore::empty();
        clients
            .add(CertificateDer::from(ca_issuer.der().to_vec()))
            .unwrap();
        Self {
            ca,
            other_ca,
            not_pem,
            client_certificate,
            client_key,
            server: server_config(None),
            mutual_server: server_config(Some(clients)),
            _dir: dir,
        }
    }
}

pub fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
