//! The scenarios: what one worker does once before the clock starts (`setup`) and what one
//! operation is (`step`). An operation may be several HTTP requests (a code flow is two, a
//! federated login two); latency and throughput are per operation.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use hyper::Method;
use hyper::header::{self, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::client::{Conn, query_param};

/// A confidential client (`client_secret_basic`).
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub auth: HeaderValue,
}

impl Client {
    /// Parses `ID:SECRET`.
    pub fn parse(s: &str) -> Result<Client> {
        let (id, _) = s
            .split_once(':')
            .ok_or_else(|| anyhow!("client must be ID:SECRET, got {s:?}"))?;
        let auth = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(s)))?;
        Ok(Client {
            id: id.to_string(),
            auth,
        })
    }

    fn header(&self) -> [(HeaderName, HeaderValue); 1] {
        [(header::AUTHORIZATION, self.auth.clone())]
    }
}

/// The server's endpoints (Portcullis' paths by default; oidc-provider's are given on the command line).
#[derive(Clone, Debug)]
pub struct Paths {
    pub token: String,
    pub authorize: String,
    pub login: String,
}

/// A scenario and its parameters.
#[derive(Debug)]
pub enum Scenario {
    /// One constant request, expecting a status.
    Fixed {
        method: Method,
        path: String,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
        expect: u16,
    },
    /// `grant_type=client_credentials`.
    ClientCredentials {
        client: Client,
        scope: Option<String>,
    },
    /// `grant_type=refresh_token`, each worker carrying its own rotating refresh token.
    Refresh { client: Client, source: TokenSource },
    /// Authorize (with the user's session cookie) then exchange the code, with PKCE S256.
    AuthorizationCode { flow: CodeFlow },
    /// A federated login: `GET /login/{provider}`, then the callback with a fresh upstream code.
    Federated {
        provider: String,
        users: u64,
        next: AtomicU64,
    },
}

/// Where the refresh scenario's initial refresh tokens come from.
#[derive(Debug)]
pub enum TokenSource {
    /// One per line, one per worker (minted by the peer server).
    List(Vec<String>),
    /// A code flow per worker (Portcullis).
    CodeFlow(Box<CodeFlow>),
}

/// An authorization-code flow with PKCE for a logged-in browser session.
#[derive(Debug, Clone)]
pub struct CodeFlow {
    pub client: Client,
    pub redirect_uri: String,
    pub scope: String,
    pub paths: Paths,
    /// The session cookie (`name=value`) of a browser that logged in once.
    pub session: (String, String),
}

/// What a worker keeps between operations.
#[derive(Default)]
pub struct WorkerState {
    refresh_token: String,
}

/// A process-wide counter for unique codes, verifiers and states.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n:016}", std::process::id())
}

impl Scenario {
    /// Prepares worker `index` before the clock starts.
    pub async fn setup(&self, conn: &mut Conn, index: usize) -> Result<WorkerState> {
        let mut st = WorkerState::default();
        match self {
            Scenario::Refresh { source, .. } => {
                st.refresh_token = match source {
                    TokenSource::List(tokens) => tokens.get(index).cloned().ok_or_else(|| {
                        anyhow!("only {} refresh tokens for worker {index}", tokens.len())
                    })?,
                    TokenSource::CodeFlow(flow) => {
                        let t: TokenAnswer = flow.run(conn).await?.json()?;
                        t.refresh_token.ok_or_else(|| {
                            anyhow!("the code flow gave no refresh token (scope offline_access?)")
                        })?
                    }
                };
            }
            Scenario::AuthorizationCode { flow } => {
                conn.set_cookie(&flow.session.0, &flow.session.1);
            }
            _ => {}
        }
        Ok(st)
    }

    /// One operation; `Ok` only when the answer is the expected one.
    pub async fn step(&self, conn: &mut Conn, st: &mut WorkerState, paths: &Paths) -> Result<()> {
        match self {
            Scenario::Fixed {
                method,
                path,
                headers,
                body,
                expect,
            } => {
                conn.send(method.clone(), path, headers, body.clone())
                    .await?
                    .expect(*expect)?;
            }
            Scenario::ClientCredentials { client, scope } => {
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(s) = scope {
                    form.push(("scope", s));
                }
                let r = conn
                    .post_form(&paths.token, &client.header(), &form)
                    .await?;
                let t: TokenAnswer = r.expect(200)?.json()?;
                if t.access_token.is_empty() {
                    bail!("no access token");
                }
            }
            Scenario::Refresh { client, .. } => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", st.refresh_token.as_str()),
                ];
                let r = conn
                    .post_form(&paths.token, &client.header(), &form)
                    .await?;
                let t: TokenAnswer = r.expect(200)?.json()?;
                if let Some(next) = t.refresh_token {
                    st.refresh_token = next;
                }
            }
            Scenario::AuthorizationCode { flow } => {
                let t: TokenAnswer = flow.run(conn).await?.json()?;
                if t.access_token.is_empty() {
                    bail!("no access token");
                }
            }
            Scenario::Federated {
                provider,
                users,
                next,
            } => {
                conn.clear_cookies();
                let start = conn.get(&format!("/login/{provider}"), &[]).await?;
                if !start.status.is_redirection() {
                    bail!("login start answered {}", start.status);
                }
                let state = query_param(start.location()?, "state")
                    .ok_or_else(|| anyhow!("the upstream redirect has no state"))?;
                let user = next.fetch_add(1, Ordering::Relaxed) % users;
                let code = unique(&format!("u{user}."));
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("code", code.as_str()), ("state", state.as_str())])
                    .finish();
                let cb = conn
                    .get(&format!("/oauth/callback/{provider}?{query}"), &[])
                    .await?;
                if !cb.status.is_redirection() || conn.cookie("portcullis_session").is_none() {
                    let body =
                        String::from_utf8_lossy(&cb.body[..cb.body.len().min(200)]).into_owned();
                    bail!("callback answered {} without a session: {body}", cb.status);
                }
            }
        }
        Ok(())
    }
}

/// The fields of a token answer the scenarios look at.
#[derive(serde::Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

impl CodeFlow {
    /// Authorize with the session cookie, then exchange the code; returns the token answer (200).
    pub async fn run(&self, conn: &mut Conn) -> Result<crate::client::Reply> {
        conn.set_cookie(&self.session.0, &self.session.1);
        let verifier = unique("verifier-0123456789-0123456789-");
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = unique("s");
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", self.client.id.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("scope", self.scope.as_str()),
                ("state", state.as_str()),
                ("nonce", state.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let auth = conn
            .get(&format!("{}?{query}", self.paths.authorize), &[])
            .await?;
        if !auth.status.is_redirection() {
            let body = String::from_utf8_lossy(&auth.body[..auth.body.len().min(200)]).into_owned();
            bail!("authorize answered {}: {body}", auth.status);
        }
        let location = auth.location()?;
        let code = query_param(location, "code")
            .with_context(|| format!("no code in the redirect {location}"))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        conn.post_form(&self.paths.token, &self.client.header(), &form)
            .await?
            .expect(200)
    }
}

/// Logs a browser in with the password form (double-submit CSRF token) and returns the session
/// cookie `(name, value)`.
pub async fn password_session(
    conn: &mut Conn,
    paths: &Paths,
    user: &str,
    password: &str,
) -> Result<(String, String)> {
    let csrf = unique("csrf-token-0123456789-");
    conn.set_cookie("portcullis_csrf", &csrf);
    let form = [
        ("username", user),
        ("password", password),
        ("csrf_token", csrf.as_str()),
    ];
    let r = conn.post_form(&paths.login, &[], &form).await?;
    let session = conn
        .cookie("portcullis_session")
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow!(
                "the sign-in form answered {} without a session cookie",
                r.status
            )
        })?;
    Ok(("portcullis_session".to_string(), session))
}
