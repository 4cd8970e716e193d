//! `LDAPIdentityProvider` (spec §4.6): a password provider that finds the user in a directory and binds as them.
//!
//! Fixed against KubeSphere (spec §4.6, §10 item 15): `startTLS` is real StartTLS (`ldaps://` in `host` is LDAPS);
//! `rootCA`/`rootCAData` are *added* to the system roots; `managerDN` is optional (anonymous search); the group
//! options are used to fill [`Identity::groups`]; empty passwords are refused before any network I/O (an empty
//! password would be an unauthenticated bind, RFC 4513 §5.1.2, which servers report as success).
//!
//! Flow: search `userSearchBase` (subtree) with `(&(<loginAttribute>=<username, RFC 4515-escaped>)<userSearchFilter>)`
//! on a connection bound as the manager (or anonymous), bind as the entry's DN with the password on another
//! connection, then read groups. Connections are pooled per provider in two pools of at most `maxConnections`
//! each: **search** connections, bound once as the manager and only ever used to search, and **bind** connections,
//! only ever used for user binds. A user bind therefore never changes the identity a search runs under, even when a
//! login is cancelled half-way. A pooled connection that turns out to be dead (server restarted) is replaced once.
//!
//! Errors: unknown user, several matching entries and a wrong password (result code 49) are
//! [`BadCredentials`](ProviderError::BadCredentials); a refused manager bind, a missing search base or a refused
//! anonymous search are [`Misconfigured`](ProviderError::Misconfigured); an unreachable server, a timeout
//! (`readTimeout`) or a failed TLS handshake are [`Upstream`](ProviderError::Upstream).

mod conn;
mod search;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use ldap3::LdapError;
use portcullis_idp::{
    Identity, PasswordProvider, PasswordProviderFactory, ProviderError, ProviderOptions, Secret,
};
use serde_json::{Map, Value};

use self::conn::{Connector, Pool};
use self::search::{GroupConfig, UserQuery};

/// Default `readTimeout` in milliseconds (KubeSphere's).
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 15_000;
/// Default `maxConnections` per pool.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4;

/// Creates [`LdapIdentityProvider`]s for `type: LDAPIdentityProvider`.
#[derive(Debug, Clone, Default)]
pub struct LdapFactory;

impl LdapFactory {
    /// The `type` string.
    pub const TYPE: &'static str = "LDAPIdentityProvider";

    /// The factory (LDAP does not use the shared HTTP client).
    pub fn new() -> Self {
        LdapFactory
    }
}

impl PasswordProviderFactory for LdapFactory {
    fn provider_type(&self) -> &str {
        Self::TYPE
    }

    fn create(
        &self,
        name: &str,
        options: &ProviderOptions,
    ) -> Result<Arc<dyn PasswordProvider>, ProviderError> {
        Ok(Arc::new(LdapIdentityProvider::new(name, options)?))
    }
}

/// A configured LDAP provider.
pub struct LdapIdentityProvider {
    name: String,
    connector: Connector,
    manager: Option<(String, Secret)>,
    query: UserQuery,
    groups: GroupConfig,
    search_pool: Pool,
    bind_pool: Pool,
    public: Map<String, Value>,
}

impl std::fmt::Debug for LdapIdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapIdentityProvider")
            .field("name", &self.name)
            .field("url", &self.connector.url)
            .finish_non_exhaustive()
    }
}

/// Where an LDAP error happened, to classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    ManagerBind,
    UserSearch,
    UserBind,
    GroupSearch,
}

/// Whether `e` means the connection itself is gone (worth one retry on a fresh connection).
fn is_stale(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::EndOfStream
    )
}

fn root_ca(options: &ProviderOptions) -> Result<Vec<(&'static str, Vec<u8>)>, ProviderError> {
    let mut extra = Vec::new();
    if let Some(path) = options.get_str("rootCA")?.filter(|s| !s.trim().is_empty()) {
        let pem = std::fs::read(path.trim()).map_err(|e| {
            ProviderError::misconfigured(format!("option `rootCA`: cannot read {path:?}: {e}"))
        })?;
        extra.push(("rootCA", pem));
    }
    if let Some(data) = options
        .get_str("rootCAData")?
        .filter(|s| !s.trim().is_empty())
    {
        let data = data.trim();
        let pem = if data.starts_with("-----BEGIN") {
            data.as_bytes().to_vec()
        } else {
            let compact: String = data.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| {
                    ProviderError::misconfigured(format!(
                        "option `rootCAData` is not base64-encoded PEM: {e}"
                    ))
                })?
        };
        extra.push(("rootCAData", pem));
    }
    Ok(extra)
}

impl LdapIdentityProvider {
    /// Validates `options` and builds the provider; no network I/O (connections open on first use).
    pub fn new(name: &str, options: &ProviderOptions) -> Result<Self, ProviderError> {
        let (url, ldaps) = conn::parse_host(&options.require_str("host")?)?;
        let starttls = options.get_bool("startTLS")?.unwrap_or(false);
        if starttls && ldaps {
            return Err(ProviderError::misconfigured(
                "options `startTLS: true` and an ldaps:// `host` exclude each other: StartTLS upgrades a plain \
                 ldap:// connection, ldaps:// is TLS from the first byte",
            ));
        }
        let insecure = options.get_bool("insecureSkipVerify")?.unwrap_or(false);
        let extra = root_ca(options)?;
        let tls = if ldaps || starttls {
            if insecure {
                tracing::warn!(
                    provider = name,
                    "insecureSkipVerify is set: the LDAP server's TLS certificate is NOT verified; anyone on the \
                     network path can read the passwords sent to it"
                );
            }
            Some(conn::tls_config(&extra)?)
        } else {
            if !extra.is_empty() {
                tracing::warn!(
                    provider = name,
                    "rootCA/rootCAData are ignored: the LDAP connection uses no TLS"
                );
            }
            None
        };
        let timeout_ms = match options.get_value("readTimeout") {
            None | Some(Value::Null) => DEFAULT_READ_TIMEOUT_MS,
            Some(Value::Number(n)) => n.as_u64().filter(|ms| *ms > 0).ok_or_else(|| {
                ProviderError::misconfigured(
                    "option `readTimeout` must be a positive number of milliseconds",
                )
            })?,
            Some(_) => {
                return Err(ProviderError::misconfigured(
                    "option `readTimeout` must be a number of milliseconds",
                ));
            }
        };
        let max = match options.get_value("maxConnections") {
            None | Some(Value::Null) => DEFAULT_MAX_CONNECTIONS,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=256).contains(n))
                .map(|n| n as usize)
                .ok_or_else(|| {
                    ProviderError::misconfigured(
                        "option `maxConnections` must be a number from 1 to 256",
                    )
                })?,
        };
        let manager_dn = options
            .get_str("managerDN")?
            .filter(|s| !s.trim().is_empty());
        let manager_password = options
            .get_secret("managerPassword")?
            .filter(|s| !s.is_empty());
        let manager = match (manager_dn, manager_password) {
            (Some(dn), Some(pw)) => Some((dn, pw)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ProviderError::misconfigured(
                    "option `managerDN` is set but `managerPassword` is empty (an empty password would be an \
                     unauthenticated bind); remove managerDN for anonymous search",
                ));
            }
            (None, Some(_)) => {
                return Err(ProviderError::misconfigured(
                    "option `managerPassword` is set without `managerDN`",
                ));
            }
        };
        let query = UserQuery::from_options(options)?;
        let groups = GroupConfig::from_options(options)?;
        Ok(LdapIdentityProvider {
            name: name.to_owned(),
            connector: Connector {
                url,
                starttls,
                tls,
                insecure,
                timeout: Duration::from_millis(timeout_ms),
            },
            manager,
            query,
            groups,
            search_pool: Pool::new(max),
            bind_pool: Pool::new(max),
            public: options.public_map(),
        })
    }

    fn classify(&self, stage: Stage, e: LdapError) -> ProviderError {
        let server = &self.connector.url;
        let rc = match &e {
            LdapError::LdapResult { result } => Some(result.rc),
            _ => None,
        };
        match (stage, rc) {
            (Stage::UserBind, Some(49)) => {
                ProviderError::bad_credentials("ldap: incorrect password")
            }
            (Stage::ManagerBind, Some(49)) => ProviderError::misconfigured(format!(
                "{server} refused the manager bind (invalid credentials); check managerDN and managerPassword"
            )),
            (Stage::UserSearch, Some(32)) => ProviderError::misconfigured(format!(
                "{server}: userSearchBase {:?} does not exist",
                self.query.base
            )),
            (Stage::GroupSearch, Some(32)) => {
                ProviderError::misconfigured(format!("{server}: groupSearchBase does not exist"))
            }
            (Stage::UserSearch | Stage::GroupSearch, Some(48 | 50)) => {
                ProviderError::misconfigured(format!(
                    "{server} refused the search ({e}); anonymous search may be disabled: set managerDN and managerPassword"
                ))
            }
            (Stage::UserSearch | Stage::GroupSearch, Some(87)) => {
                ProviderError::misconfigured(format!("{server} refused the search filter ({e})"))
            }
            (_, Some(_)) => {
                ProviderError::upstream(format!("{server}: LDAP {stage:?} failed: {e}"))
            }
            (_, None) => match e {
                LdapError::Timeout { .. } => ProviderError::upstream_with(
                    format!(
                        "{server} did not answer within readTimeout ({:?}) during {stage:?}",
                        self.connector.timeout
                    ),
                    e,
                ),
                _ => ProviderError::upstream_with(
                    format!(
                        "{server} could not be reached, or the connection or TLS handshake failed, during {stage:?}: {e}"
                    ),
                    e,
                ),
            },
        }
    }

    /// A new search connection, bound as the manager when one is configured.
    async fn open_search(&self) -> Result<ldap3::Ldap, ProviderError> {
        let mut ldap = self
            .connector
            .connect()
            .await
            .map_err(|e| self.classify(Stage::Connect, e))?;
        if let Some((dn, password)) = &self.manager {
            let result = ldap
                .with_timeout(self.connector.timeout)
                .simple_bind(dn, password.expose())
                .await
                .and_then(|r| r.success())
                .map_err(|e| self.classify(Stage::ManagerBind, e))?;
            drop(result);
        }
        Ok(ldap)
    }

    async fn open_bind(&self) -> Result<ldap3::Ldap, ProviderError> {
        self.connector
            .connect()
            .await
            .map_err(|e| self.classify(Stage::Connect, e))
    }

    /// Binds as `dn` with `password` on a bind connection.
    async fn check_password(&self, dn: &str, password: &str) -> Result<(), ProviderError> {
        for _ in 0..2 {
            let mut lease = self.bind_pool.acquire(|| self.open_bind()).await?;
            match lease
                .ldap
                .with_timeout(self.connector.timeout)
                .simple_bind(dn, password)
                .await
            {
                Ok(result) if result.rc == 0 || result.rc == 49 => {
                    lease.release();
                    return result
                        .success()
                        .map(drop)
                        .map_err(|e| self.classify(Stage::UserBind, e));
                }
                Ok(result) => {
                    return Err(self.classify(Stage::UserBind, LdapError::LdapResult { result }));
                }
                Err(e) if lease.reused && is_stale(&e) => {
                    self.bind_pool.clear();
                    continue;
                }
                Err(e) => return Err(self.classify(Stage::UserBind, e)),
            }
        }
        Err(ProviderError::upstream(format!(
            "{}: the connection was lost twice",
            self.connector.url
        )))
    }
}

#[async_trait]
impl PasswordProvider for LdapIdentityProvider {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Identity, ProviderError> {
        if password.is_empty() {
            return Err(ProviderError::bad_credentials(
                "empty passwords are refused (an empty password is an unauthenticated LDAP bind)",
            ));
        }
        if username.trim().is_empty() {
            return Err(ProviderError::bad_credentials("empty user name"));
        }
        let entry = self.find_user(username).await?;
        self.check_password(&entry.dn, password).await?;
        let groups = self.find_groups(&entry).await?;
        let Some(login) = entry.first(&self.query.login_attribute) else {
            return Err(ProviderError::misconfigured(format!(
                "the LDAP entry {:?} has no readable `{}` (loginAttribute)",
                entry.dn, self.query.login_attribute
            )));
        };
        let mut identity = Identity::new(login)?.with_username(login);
        if let Some(mail) = self
            .query
            .mail_attribute
            .as_deref()
            .and_then(|a| entry.first(a))
        {
            // The directory is the operator's own: its addresses count as verified
            // (docs/providers.md, docs/oidc.md).
            identity = identity.with_email(mail).with_email_verified(true);
        }
        if let Some(name) = self
            .query
            .display_name_attribute
            .as_deref()
            .and_then(|a| entry.first(a))
        {
            identity = identity.with_display_name(name);
        }
        for g in groups {
            identity = identity.with_group(g);
        }
        Ok(identity)
    }

    fn public_options(&self) -> Map<String, Value> {
        self.public.clone()
    }
}
