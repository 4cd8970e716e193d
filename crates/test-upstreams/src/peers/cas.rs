//! [`CasPeer`]: a real CAS 1/2/3 server (`django-cas-server` from PyPI) from `peers/cas/site`, on a copy of the
//! template database that `ci-install.sh` migrates and seeds: users `alice`/`alicepw` (groups `admins`,
//! `developers`) and `bob`/`bobpw`; any `http(s)://127.0.0.1|localhost` service; released attributes `email`,
//! `username`, `displayName` and `memberOf`. [`login`] drives its login form like a browser.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use super::browser::Browser;
use super::{PeerProcess, peers_dir, require};

/// A running CAS server.
#[derive(Debug)]
pub struct CasPeer {
    /// The CAS base URL, `http://127.0.0.1:PORT/cas`.
    pub base_url: String,
    process: PeerProcess,
    _dir: tempfile::TempDir,
}

impl CasPeer {
    /// Starts a CAS server on a free port (about half a second).
    pub async fn start() -> Result<CasPeer, String> {
        tokio::task::spawn_blocking(start_blocking)
            .await
            .map_err(|e| e.to_string())?
    }

    /// The server shared by this test binary, started on first use.
    pub async fn shared() -> Result<&'static CasPeer, String> {
        static PEER: OnceCell<CasPeer> = OnceCell::const_new();
        PEER.get_or_try_init(CasPeer::start).await
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

fn start_blocking() -> Result<CasPeer, String> {
    let root = peers_dir().join("cas");
    let python = root.join(".venv/bin/python");
    let template = root.join(".venv/template.sqlite3");
    require(&python, "django-cas-server (its venv)")?;
    require(&template, "the CAS template database")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("cas.sqlite3");
    std::fs::copy(&template, &db).map_err(|e| format!("cannot copy the CAS database: {e}"))?;
    let mut cmd = Command::new(python);
    cmd.arg(root.join("site/serve.py"))
        .current_dir(root.join("site"))
        .env("CAS_DB", &db);
    let mut process =
        PeerProcess::spawn("django-cas-server", cmd, &dir.path().join("cas.log"), true)?;
    let line = process.first_line(Duration::from_secs(30))?;
    let port = serde_json::from_str::<Value>(&line)
        .ok()
        .and_then(|v| v.get("port").and_then(Value::as_u64))
        .ok_or_else(|| format!("django-cas-server printed {line:?}"))?;
    Ok(CasPeer {
        base_url: format!("http://127.0.0.1:{port}/cas"),
        process,
        _dir: dir,
    })
}

/// Submits `username` and `password` on the CAS login page at `login_url` (which carries `service=`) and returns
/// where CAS sends the browser: `Ok(Some(<service>?ticket=ST-…))` on success, `Ok(None)` when CAS shows the form
/// again (wrong password).
pub async fn login(login_url: &Url, username: &str, password: &str) -> Result<Option<Url>, String> {
    let browser = Browser::new();
    let form = browser.get(login_url).await?;
    if form.status != 200 {
        return Err(format!("CAS login page answered HTTP {}", form.status));
    }
    let field = |name: &str| {
        form.input_value(name)
            .ok_or_else(|| format!("the CAS login page has no `{name}` field"))
    };
    let lt = field("lt")?;
    let csrf = field("csrfmiddlewaretoken")?;
    let service = login_url
        .query_pairs()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let fields = [
        ("username", username),
        ("password", password),
        ("lt", lt.as_str()),
        ("csrfmiddlewaretoken", csrf.as_str()),
        ("service", service.as_str()),
    ];
    let answer = browser.post_form(login_url, &fields, login_url).await?;
    match (answer.status, answer.location) {
        (302 | 303, Some(location)) => Ok(Some(location)),
        (200, _) => Ok(None),
        (status, _) => Err(format!("CAS login answered HTTP {status}")),
    }
}
