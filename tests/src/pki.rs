//! Test certificates, made in the test with rcgen: certificate authorities, server
//! certificates for `127.0.0.1`/`localhost`, client certificates; and the two TLS clients the
//! tests speak through: an HTTPS `ureq` agent and a raw probe that reports the peer's
//! certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A certificate authority that signs test certificates.
pub struct TestCa {
    /// The CA's certificate, PEM.
    pub cert_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// The certificate, DER: what a TLS peer presents.
    pub fn der(&self) -> Result<Vec<u8>> {
        Ok(CertificateDer::from_pem_slice(self.cert_pem.as_bytes())?.to_vec())
    }

    /// Writes `NAME.crt` and `NAME.key` into `dir` (each through a temporary file and a
    /// rename, as a certificate manager replaces them) and returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        write_replacing(&key, &self.key_pem)?;
        write_replacing(&cert, &self.cert_pem)?;
        Ok((cert, key))
    }
}

/// Replaces `path` with `text` at once (write a temporary file, rename it over).
pub fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<TestCa> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// Writes the CA certificate to `path` and returns it.
    pub fn write(&self, path: &Path) -> Result<PathBuf> {
        write_replacing(path, &self.cert_pem)?;
        Ok(path.to_owned())
    }

    /// A server certificate for `127.0.0.1` and `localhost` (a new serial each time).
    pub fn server_cert(&self) -> Result<Issued> {
        self.issue(
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for `name`.
    pub fn client_cert(&self, name: &str) -> Result<Issued> {
        self.issue(
            vec![name.to_owned()],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn issue(&self, names: Vec<String>, usage: rcgen::ExtendedKeyUsagePurpose) -> Result<Issued> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// An HTTP agent for `https://` URLs that trusts only `ca_pem`, and presents `client` when
/// given.
pub fn https_agent(ca_pem: &str, client: Option<&Issued>) -> Result<ureq::Agent> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let roots = RootCerts::new_with_certs(&[Certificate::from_pem(ca_pem.as_bytes())?]);
    let client_cert = client
        .map(|issued| -> Result<ClientCert> {
            Ok(ClientCert::new_with_certs(
                &[Certificate::from_pem(issued.cert_pem.as_bytes())?],
                PrivateKey::from_pem(issued.key_pem.as_bytes())?,
            ))
        })
        .transpose()?;
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client_cert)
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into())
}

/// What a TLS probe saw: the certificate the server presented and its first answer.
pub struct ProbeAnswer {
    /// The server's certificate, DER.
    pub peer_cert_der: Vec<u8>,
    /// What the server answered to the bytes sent, up to 4 KiB.
    pub answer: Vec<u8>,
}

/// Connects to `addr` (`host:port`) over TLS 1.2/1.3 with ALPN `alpn`, trusting only
/// `ca_pem` and presenting `client` when given; sends `request` and reads the first answer.
/// Fails when the handshake fails or the server ends the connection with an alert.
pub fn probe(
    addr: &str,
    ca_pem: &str,
    client: Option<&Issued>,
    alpn: &[u8],
    request: &[u8],
) -> Result<ProbeAnswer> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut config = match client {
        Some(issued) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())?],
            PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let host = addr.rsplit_once(':').context("host:port")?.0;
    let server_name = ServerName::try_from(host.to_owned())?;
    let connection = rustls::ClientConnection::new(Arc::new(config), server_name)?;
    let socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(request)?;
    stream.flush()?;
    let mut answer = vec![0; 4096];
    let read = stream
        .read(&mut answer)
        .context("reading the server's answer")?;
    answer.truncate(read);
    let peer_cert_der = stream
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .context("the server presented no certificate")?
        .to_vec();
    Ok(ProbeAnswer {
        peer_cert_der,
        answer,
    })
}

/// The HTTP/2 client preface and an empty SETTINGS frame: what a gRPC client sends first.
pub const H2_PREFACE: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Whether `answer` starts with an HTTP/2 SETTINGS frame (what an h2 server sends first).
pub fn is_h2_settings(answer: &[u8]) -> bool {
    answer.len() >= 9 && answer[3] == 0x04 && answer[5..9] == [0, 0, 0, 0]
}
