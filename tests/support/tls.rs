//! Test certificates, generated at test time with rcgen: a private CA and a server certificate it
//! signs for `localhost` and 127.0.0.1 (or other names, or one that expired in 2020), both written as PEM files so a scenario can name the CA
//! in `defaults.tls.ca`.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A private CA and one server certificate signed by it.
pub struct TestPki {
    /// The CA certificate, PEM (what `defaults.tls.ca` points at).
    pub ca_pem: String,
    /// The server's certificate chain (leaf, then CA), DER.
    chain: Vec<CertificateDer<'static>>,
    /// The server's private key, PKCS#8 DER.
    key: Vec<u8>,
}

impl TestPki {
    /// A fresh CA and a server certificate for `localhost` and 127.0.0.1.
    pub fn generate() -> TestPki {
        Self::generate_for(&["localhost", "127.0.0.1"], false)
    }

    /// A fresh CA and a server certificate for `names`, valid now or (`expired`) only during
    /// 2020.
    pub fn generate_for(names: &[&str], expired: bool) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "flashcrowd test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("a CA certificate");

        let leaf_key = KeyPair::generate().expect("a server key");
        let mut leaf_params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, names[0]);
        if expired {
            leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            leaf_params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("a server certificate");

        TestPki {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA certificate as PEM to `dir/name` and returns the path.
    pub fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem).expect("write the CA PEM");
        path
    }

    /// A rustls server configuration offering `alpn` (e.g. `["h2", "http/1.1"]`).
    pub fn server_config(&self, alpn: &[&str]) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("the server certificate and key match");
        cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(cfg)
    }
}
