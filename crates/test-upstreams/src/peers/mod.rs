//! Real third-party servers the provider tests start by themselves: node `oidc-provider` ([`oidc`]), Debian's
//! OpenLDAP `slapd` ([`ldap`]) and `django-cas-server` ([`cas`]). `peers/ci-install.sh` beside this crate installs
//! them (idempotent); a test whose peer is not installed fails with a message naming that script.
//!
//! Each peer listens on free loopback ports, runs from a temporary directory, and is stopped by pid when its
//! handle is dropped. Peers shared by a whole test binary live in a `static` and are never dropped, so every
//! process is paired with a *watchdog* (`sh -c 'cat >/dev/null; kill $pid'` reading a pipe only this process
//! holds): when the test binary exits, for whatever reason, the pipe closes and the watchdog stops the peer.
//! Readiness is polled with a deadline; nothing sleeps to wait.

pub mod browser;
pub mod cas;
pub mod ldap;
pub mod oidc;
pub mod token_proxy;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The directory holding the peers' scripts and installs (`crates/test-upstreams/peers`).
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Fails with an install hint when `path` does not exist.
pub(crate) fn require(path: &Path, what: &str) -> Result<(), String> {
    if path.exists() {
        Ok(())
    } else {
        Err(format!(
            "{what} is not installed ({} is missing); run `bash {}/ci-install.sh` as root",
            path.display(),
            peers_dir().display()
        ))
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A fresh test CA (named `ca_name`) and a server certificate it signed for `localhost` and
/// `127.0.0.1`: `(CA PEM, server certificate PEM, server key PEM)`.
pub fn test_certificates(ca_name: &str) -> Result<(String, String, String), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let err = |e: rcgen::Error| format!("rcgen: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

/// A running peer process with its watchdog; dropping it stops both, by pid.
#[derive(Debug)]
pub struct PeerProcess {
    name: String,
    child: Child,
    watchdog: Option<Child>,
    log: PathBuf,
}

impl PeerProcess {
    /// Spawns `cmd` (stderr, and stdout unless `capture_stdout`, to `log`) with a watchdog.
    pub(crate) fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        capture_stdout: bool,
    ) -> Result<Self, String> {
        let file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stderr(Stdio::from(err));
        if capture_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(Stdio::from(file));
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(r#"cat >/dev/null; kill -TERM "$1" 2>/dev/null"#)
            .arg("watchdog")
            .arg(child.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Ok(PeerProcess {
            name: name.to_owned(),
            child,
            watchdog,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's stdout, when it was captured.
    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An error message: what failed, with the exit status and log tail.
    pub(crate) fn failure(&mut self, what: &str) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!(" (it exited: {s})"),
            _ => String::new(),
        };
        format!(
            "{} {what}{status}; log {}:\n{}",
            self.name,
            self.log.display(),
            self.log_tail()
        )
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls until `addr` accepts TCP connections, the process exits, or `timeout` passes.
    pub(crate) fn wait_for_port(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if self.has_exited() || Instant::now() > deadline {
                return Err(self.failure(&format!("did not listen on {addr}")));
            }
            std::thread::yield_now();
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Reads the first stdout line (the peer prints its address as JSON), waiting at most `timeout`. The rest of
    /// stdout is drained in the background so the peer never blocks on a full pipe.
    pub(crate) fn first_line(&mut self, timeout: Duration) -> Result<String, String> {
        let Some(out) = self.take_stdout() else {
            return Err(format!("{}: stdout was not captured", self.name));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        match rx.recv_timeout(timeout) {
            Ok(Some(Ok(line))) => Ok(line),
            _ => Err(self.failure("printed no address")),
        }
    }

    /// Stops the process (and its watchdog) now.
    pub fn stop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
