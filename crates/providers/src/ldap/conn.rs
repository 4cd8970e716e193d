//! Connections to the directory: the server address (`host`), TLS (LDAPS, StartTLS, `rootCA`/`rootCAData` added to
//! the system roots), and a small pool of reusable connections.
//!
//! Roots: the operating system's store (`rustls-native-certs`, the same source ldap3 itself uses) rather than the
//! compiled-in Mozilla list (`webpki-roots`): directory servers are almost always signed by an enterprise CA that
//! operators install into the system store, never by a public CA, and the system store follows the host's updates.
//!
//! Pooling: a [`Pool`] keeps up to `max` idle connections and never lets more than `max` be in use at once. A
//! connection goes back to the pool only after an operation *completed* on it; one whose operation failed, timed
//! out or was cancelled is dropped, so a pooled connection is never left half-way through a bind. The provider uses
//! two pools with different jobs (see the parent module), so a user bind can never change the identity of a
//! connection that searches.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use portcullis_idp::ProviderError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::{Semaphore, SemaphorePermit};
use url::Url;

/// Idle connections older than this are closed rather than reused (servers drop idle clients).
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Where and how to connect.
#[derive(Clone)]
pub(crate) struct Connector {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    pub starttls: bool,
    pub tls: Option<Arc<ClientConfig>>,
    pub insecure: bool,
    pub timeout: Duration,
}

/// Parses `host`: `host`, `host:port`, `ldap://host[:port]` or `ldaps://host[:port]`; default ports 389 and 636.
pub(crate) fn parse_host(raw: &str) -> Result<(String, bool), ProviderError> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("ldap://{raw}")
    };
    let bad =
        |why: String| ProviderError::misconfigured(format!("option `host` {why} (found {raw:?})"));
    let url = Url::parse(&with_scheme).map_err(|e| {
        bad(format!(
            "is not host:port or an ldap:// / ldaps:// URL: {e}"
        ))
    })?;
    let tls = match url.scheme() {
        "ldap" => false,
        "ldaps" => true,
        other => {
            return Err(bad(format!(
                "has scheme `{other}`; use ldap:// or ldaps://"
            )));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host name".into()))?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(bad(
            "must not have a path or query (set userSearchBase instead)".into(),
        ));
    }
    let port = url.port().unwrap_or(if tls { 636 } else { 389 });
    Ok((format!("{}://{host}:{port}", url.scheme()), tls))
}

fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not read some system root certificates");
        }
        found.certs
    })
}

/// A TLS client configuration trusting the system roots plus the PEM certificates in `extra` (each tagged with the
/// option it came from, for messages).
pub(crate) fn tls_config(extra: &[(&str, Vec<u8>)]) -> Result<Arc<ClientConfig>, ProviderError> {
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if ignored > 0 {
        tracing::debug!(ignored, "some system root certificates are not usable");
    }
    for (key, pem) in extra {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                ProviderError::misconfigured(format!(
                    "option `{key}` holds a malformed PEM certificate: {e}"
                ))
            })?;
            roots.add(cert).map_err(|e| {
                ProviderError::misconfigured(format!(
                    "option `{key}` holds an unusable CA certificate: {e}"
                ))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(ProviderError::misconfigured(format!(
                "option `{key}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )));
        }
    }
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            ProviderError::misconfigured(format!("cannot build the LDAP TLS configuration: {e}"))
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Connector {
    /// Opens a connection (and runs StartTLS when configured); the whole step is bounded by the timeout.
    pub async fn connect(&self) -> Result<Ldap, ldap3::LdapError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if self.insecure {
            settings = settings.set_no_tls_verify(true);
        } else if let Some(config) = &self.tls {
            settings = settings.set_config(config.clone());
        }
        let (conn, ldap) = tokio::time::timeout(
            self.timeout,
            LdapConnAsync::with_settings(settings, &self.url),
        )
        .await??;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection closed");
            }
        });
        Ok(ldap)
    }
}

struct Idle {
    ldap: Ldap,
    since: Instant,
}

/// A bounded pool of connections for one job.
pub(crate) struct Pool {
    idle: Mutex<Vec<Idle>>,
    slots: Semaphore,
}

/// A connection taken from a [`Pool`]. Dropping it closes the connection; [`Lease::release`] returns it.
pub(crate) struct Lease<'p> {
    pub ldap: Ldap,
    /// Whether the connection was reused from the pool (it may have gone stale since).
    pub reused: bool,
    pool: &'p Pool,
    _slot: SemaphorePermit<'p>,
}

impl Lease<'_> {
    /// Returns a connection whose last operation completed to the pool.
    pub fn release(self) {
        let Lease {
            mut ldap,
            pool,
            _slot,
            ..
        } = self;
        if ldap.is_closed() {
            return;
        }
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(Idle {
            ldap,
            since: Instant::now(),
        });
    }
}

impl Pool {
    pub fn new(max: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(max.max(1)),
        }
    }

    /// A pooled connection, or a new one from `open` when none is idle. Waits while `max` are in use.
    pub async fn acquire<F, Fut, E>(&self, open: F) -> Result<Lease<'_>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Ldap, E>>,
    {
        let slot = self
            .slots
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        loop {
            let popped = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut idle) = popped else { break };
            if idle.since.elapsed() < MAX_IDLE && !idle.ldap.is_closed() {
                return Ok(Lease {
                    ldap: idle.ldap,
                    reused: true,
                    pool: self,
                    _slot: slot,
                });
            }
        }
        let ldap = open().await?;
        Ok(Lease {
            ldap,
            reused: false,
            pool: self,
            _slot: slot,
        })
    }

    /// Closes every idle connection (the next use opens fresh ones).
    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let p = |s: &str| parse_host(s).map(|(u, tls)| format!("{u} {tls}"));
        assert_eq!(
            p("ldap.example.com").unwrap(),
            "ldap://ldap.example.com:389 false"
        );
        assert_eq!(
            p("ldap.example.com:3890").unwrap(),
            "ldap://ldap.example.com:3890 false"
        );
        assert_eq!(
            p("ldaps://ldap.example.com").unwrap(),
            "ldaps://ldap.example.com:636 true"
        );
        assert_eq!(
            p("ldap://127.0.0.1:10389/").unwrap(),
            "ldap://127.0.0.1:10389 false"
        );
        assert_eq!(p("[::1]:389").unwrap(), "ldap://[::1]:389 false");
        for bad in ["http://x", "ldap://", "ldap://h/dc=x", "h:notaport"] {
            let e = parse_host(bad).unwrap_err();
            assert!(
                e.is_misconfigured() && e.to_string().contains("`host`"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn root_ca_must_hold_a_certificate() {
        rustls::crypto::aws_lc_rs::default_provider()
            .install_default()
            .ok();
        let e = tls_config(&[("rootCAData", b"not a pem".to_vec())]).unwrap_err();
        assert!(e.to_string().contains("`rootCAData`"), "{e}");
        assert!(tls_config(&[]).is_ok());
    }
}
