//! The agent's side of TLS to the collector (`[tls]`): the PEM files checked and turned into
//! tonic's client TLS settings, and telling a TLS failure from other connection failures.
//! With `ca` set only that CA is trusted; without it, the system's CA store.

use std::path::Path;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::config::TlsConfig;

/// Longest the TLS handshake with the collector may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The problems of `[tls]` for the collector URL `collector`, each naming its key and file.
pub fn problems(tls: &TlsConfig, collector: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if tls.is_set() && !collector.starts_with("https://") {
        problems.push(format!(
            "`tls`: set, but `collector` ({collector:?}) is not an https:// URL: the connection would not use TLS"
        ));
    }
    if tls.cert.is_some() != tls.key.is_some() {
        problems.push("`tls.cert` and `tls.key`: give both or neither".to_owned());
    }
    if let Some(path) = &tls.ca
        && let Err(problem) = check_certificates(path)
    {
        problems.push(format!("`tls.ca`: {problem}"));
    }
    if let Some(path) = &tls.cert
        && let Err(problem) = check_certificates(path)
    {
        problems.push(format!("`tls.cert`: {problem}"));
    }
    if let Some(path) = &tls.key
        && let Err(problem) = check_key(path)
    {
        problems.push(format!("`tls.key`: {problem}"));
    }
    problems
}

fn check_certificates(path: &Path) -> Result<(), String> {
    let pem =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{} is not PEM: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(())
}

fn check_key(path: &Path) -> Result<(), String> {
    let pem =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map(drop)
        .map_err(|error| {
            format!(
                "{} holds no PEM private key (PKCS#8, RSA or SEC1): {error}",
                path.display()
            )
        })
}

/// The client TLS settings for `[tls]`: its CA (or the system's), its client certificate.
/// The files were checked when the configuration was loaded; they are read again here.
pub fn client_tls_config(tls: &TlsConfig) -> std::io::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new().timeout(HANDSHAKE_TIMEOUT);
    config = match &tls.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(std::fs::read(ca)?)),
        None => config.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        config = config.identity(Identity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ));
    }
    Ok(config)
}

/// Whether `error` or one of its sources is a TLS failure (unknown CA, a certificate the
/// collector refused, a handshake alert), as opposed to a refused or dropped connection.
///
/// With TLS 1.3 a collector that refuses the agent's certificate (or its lack of one) says
/// so after the agent finished its side of the handshake; h2 then passes the alert on as
/// text only, so rustls's wording is looked for too. When the collector closed the
/// connection before the alert was read, the agent sees a broken pipe and cannot tell.
pub fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        let text = error.to_string();
        if text.contains("received fatal alert") || text.contains("invalid peer certificate") {
            return true;
        }
        current = error.source();
    }
    false
}

/// `error` and its sources on one line: tonic's own message ("transport error") says little.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    // A status's own text repeats its source's debug form: its code and message say it.
    let mut text = match error.downcast_ref::<tonic::Status>() {
        Some(status) => format!("{:?}: {}", status.code(), status.message()),
        None => error.to_string(),
    };
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and tonic repeat their source's message in their own.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::AgentConfig;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Writes a CA certificate, a client certificate and its key into `dir`.
    fn write_files(dir: &Path) -> Result<TlsConfig, Box<dyn std::error::Error>> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["agent".to_owned()])?.signed_by(&key, &issuer)?;
        let tls = TlsConfig {
            ca: Some(dir.join("ca.crt")),
            cert: Some(dir.join("agent.crt")),
            key: Some(dir.join("agent.key")),
        };
        std::fs::write(dir.join("ca.crt"), ca.pem())?;
        std::fs::write(dir.join("agent.crt"), cert.pem())?;
        std::fs::write(dir.join("agent.key"), key.serialize_pem())?;
        Ok(tls)
    }

    fn config_text(collector: &str, tls: &TlsConfig) -> String {
        let mut text = format!("collector = {collector:?}\n[tls]\n");
        for (name, path) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
            if let Some(path) = path {
                text.push_str(&format!("{name} = {:?}\n", path.display().to_string()));
            }
        }
        text
    }

    #[test]
    fn good_tls_files_with_an_https_collector_are_accepted_and_build() -> TestResult {
        let dir = tempfile::tempdir()?;
        let tls = write_files(dir.path())?;
        let config = AgentConfig::parse(&config_text("https://collector.example:7701", &tls))
            .map_err(|problems| problems.join("; "))?;
        assert_eq!(config.tls.ca, tls.ca);
        client_tls_config(&config.tls)?;
        Ok(())
    }

    #[test]
    fn tls_with_an_http_collector_is_a_problem() -> TestResult {
        let dir = tempfile::tempdir()?;
        let tls = write_files(dir.path())?;
        let problems = AgentConfig::parse(&config_text("http://collector.example:7701", &tls))
            .expect_err("plaintext URL with [tls]");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("is not an https:// URL"),
            "{problems:?}"
        );
        Ok(())
    }

    #[test]
    fn a_cert_without_its_key_and_missing_or_broken_files_are_named() -> TestResult {
        let dir = tempfile::tempdir()?;
        let tls = write_files(dir.path())?;
        let no_key = TlsConfig {
            key: None,
            ..tls.clone()
        };
        let problems = AgentConfig::parse(&config_text("https://c:7701", &no_key))
            .expect_err("cert without key");
        assert_eq!(
            problems,
            vec!["`tls.cert` and `tls.key`: give both or neither"]
        );

        let missing_ca = TlsConfig {
            ca: Some(dir.path().join("absent.crt")),
            ..tls.clone()
        };
        let problems = AgentConfig::parse(&config_text("https://c:7701", &missing_ca))
            .expect_err("no such CA file");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("`tls.ca`: cannot read ") && problems[0].contains("absent.crt"),
            "{problems:?}"
        );

        // The key where the certificate belongs, and the reverse: both named.
        let swapped = TlsConfig {
            cert: tls.key.clone(),
            key: tls.cert.clone(),
            ..tls
        };
        let problems = AgentConfig::parse(&config_text("https://c:7701", &swapped))
            .expect_err("swapped files");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("`tls.cert`: ") && problems[0].contains("no PEM certificate"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("`tls.key`: ") && problems[1].contains("no PEM private key"),
            "{problems:?}"
        );
        Ok(())
    }

    #[test]
    fn tls_failures_are_told_from_other_connection_failures() {
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(is_tls_failure(&tls));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_tls_failure(&refused));
        assert!(
            describe(&tls).contains("UnknownIssuer"),
            "{}",
            describe(&tls)
        );
        // h2 keeps only the text of an alert the collector sent after the handshake.
        let alert_as_text = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        );
        assert!(is_tls_failure(&alert_as_text));
    }
}
