//! [`OidcPeer`]: two real OpenID Connect providers (node `oidc-provider`, OpenID certified) in one node process,
//! from `peers/oidc/server.mjs`: `conform` (claims only at userinfo, the default) and `nonconform` (claims in the
//! ID token too). Clients `rs256`, `es256` (ID token algorithms) and `post` (`client_secret_post`), each with the
//! secret `<id>-secret` and the redirect URI [`REDIRECT_URI`]; PKCE is required. [`login`] drives the
//! development login form like a browser.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::browser::Browser;
use super::{PeerProcess, free_port, peers_dir, require};
use crate::FaultProxy;

/// The redirect URI every client registers (nothing listens there: [`login`] stops at the redirect).
pub const REDIRECT_URI: &str = "http://127.0.0.1:1/oauth/callback/oidc";

/// A running pair of OpenID Connect providers.
#[derive(Debug)]
pub struct OidcPeer {
    /// The issuer with `conformIdTokenClaims: true`.
    pub conform: String,
    /// The issuer with `conformIdTokenClaims: false`.
    pub nonconform: String,
    process: PeerProcess,
    dir: tempfile::TempDir,
}

impl OidcPeer {
    /// Starts a new pair on free ports (about a second: key generation and node start-up).
    pub fn start() -> Result<OidcPeer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (process, conform, nonconform) = spawn(&dir, None)?;
        Ok(OidcPeer {
            conform,
            nonconform,
            process,
            dir,
        })
    }

    /// Starts a pair whose `conform` issuer is `proxy`'s address: the proxy is pointed at the real listener, so
    /// discovery, token, userinfo and JWKS requests all pass through it. `redirect_uri` is registered for every
    /// client.
    pub fn start_behind(proxy: &FaultProxy, redirect_uri: &str) -> Result<OidcPeer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        proxy.set_target(&format!("http://127.0.0.1:{port}"));
        let mut cmd = command(redirect_uri)?;
        cmd.env("PORTS", format!("{port},0"))
            .env("ISSUERS", format!("{},", proxy.base_url()));
        let (process, conform, nonconform) = run(&dir, cmd)?;
        Ok(OidcPeer {
            conform,
            nonconform,
            process,
            dir,
        })
    }

    /// The pair shared by this test binary, started on first use.
    pub fn shared() -> Result<&'static OidcPeer, String> {
        static PEER: OnceLock<Result<OidcPeer, String>> = OnceLock::new();
        PEER.get_or_init(OidcPeer::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Stops the process and starts a new one on the same ports: same issuers, **new signing keys** (new key
    /// ids), so relying parties see a key rotation.
    pub fn restart(&mut self) -> Result<(), String> {
        self.process.stop();
        let port = |issuer: &str| Url::parse(issuer).ok().and_then(|u| u.port()).unwrap_or(0);
        let ports = (port(&self.conform), port(&self.nonconform));
        let (process, conform, nonconform) = spawn(&self.dir, Some(ports))?;
        if (conform.as_str(), nonconform.as_str())
            != (self.conform.as_str(), self.nonconform.as_str())
        {
            return Err(format!(
                "the restarted oidc-provider moved to {conform} / {nonconform}"
            ));
        }
        self.process = process;
        Ok(())
    }

    /// Stops the process (the issuers stop answering).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// `node server.mjs` with `redirect_uri` registered.
fn command(redirect_uri: &str) -> Result<Command, String> {
    let root = peers_dir().join("oidc");
    require(
        &root.join("node_modules/oidc-provider"),
        "node oidc-provider",
    )?;
    let mut cmd = Command::new("node");
    cmd.arg(root.join("server.mjs"))
        .current_dir(&root)
        .env("REDIRECT_URIS", redirect_uri);
    Ok(cmd)
}

fn spawn(
    dir: &tempfile::TempDir,
    ports: Option<(u16, u16)>,
) -> Result<(PeerProcess, String, String), String> {
    let mut cmd = command(REDIRECT_URI)?;
    if let Some((a, b)) = ports {
        cmd.env("PORTS", format!("{a},{b}"));
    }
    run(dir, cmd)
}

/// Runs `cmd` and reads the issuers it prints.
fn run(dir: &tempfile::TempDir, cmd: Command) -> Result<(PeerProcess, String, String), String> {
    let mut process = PeerProcess::spawn(
        "oidc-provider",
        cmd,
        &dir.path().join("oidc-provider.log"),
        true,
    )?;
    // Restarting on the same ports can race with the old listener's teardown; node then exits at once.
    let line = process.first_line(Duration::from_secs(30))?;
    let addresses: Value =
        serde_json::from_str(&line).map_err(|e| format!("oidc-provider printed {line:?}: {e}"))?;
    let issuer = |k: &str| addresses.get(k).and_then(Value::as_str).map(str::to_owned);
    match (issuer("conform"), issuer("nonconform")) {
        (Some(a), Some(b)) => Ok((process, a, b)),
        _ => Err(format!("oidc-provider printed {line:?}")),
    }
}

/// Logs in as `login` through the development interactions of the provider that `auth_url` (the relying party's
/// authorization URL) points at, consenting when asked, and returns the URL the browser is finally sent to (the
/// redirect URI with `code`, `state` and `iss`, or with `error`).
pub async fn login(auth_url: &Url, login: &str) -> Result<Url, String> {
    let browser = Browser::new();
    let origin = auth_url.origin();
    let mut page = browser.get(auth_url).await?;
    for _ in 0..12 {
        let Some(next) = page.location.clone() else {
            return Err(format!(
                "oidc-provider answered HTTP {} without a redirect: {}",
                page.status,
                excerpt(&page.body)
            ));
        };
        if next.origin() != origin {
            return Ok(next);
        }
        if next.path().starts_with("/interaction/") {
            let form = browser.get(&next).await?;
            page = if form.body.contains("name=\"login\"") {
                browser
                    .post_form(
                        &next,
                        &[("prompt", "login"), ("login", login), ("password", "any")],
                        &next,
                    )
                    .await?
            } else {
                browser
                    .post_form(&next, &[("prompt", "consent")], &next)
                    .await?
            };
        } else {
            page = browser.get(&next).await?;
        }
    }
    Err("oidc-provider redirected too many times".into())
}

fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}
