//! The TLS configuration a client uses when the application gives none, from the crate's
//! features: the crypto provider (`ring`, `aws-lc-rs`) and where trust comes from
//! (`webpki-roots`, `platform-verifier`).

use std::sync::{Arc, OnceLock};

/// Why there is no default TLS configuration; `wss://` endpoints then need
/// [`ClientBuilder::tls`](crate::ClientBuilder::tls).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefaultTlsError {
    #[error("no crypto provider: enable the `ring` or `aws-lc-rs` feature, or pass your own TLS configuration")]
    NoProvider,
    #[error("no source of trust: enable the `webpki-roots` or `platform-verifier` feature, or pass your own TLS configuration")]
    NoRoots,
    #[error("the TLS configuration was refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The default TLS configuration: certificates verified, TLS 1.2 and 1.3, with
/// - the crypto of `aws-lc-rs` if that feature is on, else *ring* (feature `ring`, the default);
/// - the operating system's verifier if `platform-verifier` is on, else the Mozilla roots compiled
///   in (feature `webpki-roots`, the default).
///
/// Built once per process and shared: the root store alone is tens of kilobytes, which every
/// idle connection would otherwise carry.
pub fn default_tls() -> Result<Arc<rustls::ClientConfig>, DefaultTlsError> {
    static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, DefaultTlsError>> = OnceLock::new();
    DEFAULT.get_or_init(|| build().map(Arc::new)).clone()
}

fn build() -> Result<rustls::ClientConfig, DefaultTlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider()?))
        .with_safe_default_protocol_versions()?;
    #[cfg(feature = "platform-verifier")]
    {
        use rustls_platform_verifier::BuilderVerifierExt;
        Ok(builder.with_platform_verifier()?.with_no_client_auth())
    }
    #[cfg(all(not(feature = "platform-verifier"), feature = "webpki-roots"))]
    {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
    #[cfg(not(any(feature = "platform-verifier", feature = "webpki-roots")))]
    {
        let _ = builder;
        Err(DefaultTlsError::NoRoots)
    }
}

fn provider() -> Result<rustls::crypto::CryptoProvider, DefaultTlsError> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(not(feature = "aws-lc-rs"), feature = "ring"))]
    return Ok(rustls::crypto::ring::default_provider());
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    return Err(DefaultTlsError::NoProvider);
}
