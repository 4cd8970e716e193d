//! [`Slapd`]: Debian's OpenLDAP server in a temporary directory, with a test CA made by rcgen at start (server
//! certificate for `127.0.0.1` and `localhost`) for StartTLS on the plain port and LDAPS on the TLS port.
//!
//! Directory (`dc=example,dc=org`; root `cn=admin,dc=example,dc=org` / [`ADMIN_PASSWORD`]; anonymous users may
//! search and read everything but passwords):
//! * `ou=Users`: `uid=alice` (`alicepw`, cn "Alice Liddell", mail alice@example.org), `uid=bob` (`bobpw`), and
//!   `uid=twin1`/`uid=twin2` (`twinpw`) who share the mail `twins@example.org`;
//! * `ou=Groups`: `cn=admins` (groupOfNames: alice), `cn=developers` (alice, bob) — the `memberof` overlay fills
//!   the users' `memberOf` — and `cn=ops` (posixGroup, `memberUid: bob`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings};
use tokio::sync::OnceCell;

use super::{PeerProcess, free_port, require, test_certificates};

/// The directory suffix.
pub const BASE_DN: &str = "dc=example,dc=org";
/// The root DN.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// The root DN's password.
pub const ADMIN_PASSWORD: &str = "adminpw";
const SLAPD: &str = "/usr/sbin/slapd";

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT` (plain, StartTLS available).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:PORT`.
    pub ldaps_url: String,
    /// The test CA certificate (PEM).
    pub ca_pem: String,
    /// Where the CA certificate is stored (for `rootCA`).
    pub ca_path: std::path::PathBuf,
    ports: (u16, u16),
    process: PeerProcess,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
database mdb
maxsize 104857600
suffix \"{BASE_DN}\"
rootdn \"{ADMIN_DN}\"
rootpw {ADMIN_PASSWORD}
directory {d}/db
overlay memberof
"
    )
}

impl Slapd {
    /// Starts slapd on free ports and seeds the directory (well under a second).
    pub async fn start() -> Result<Slapd, String> {
        require(
            std::path::Path::new(SLAPD),
            "slapd (apt-get install slapd ldap-utils)",
        )?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (ca, cert, key) = test_certificates("Portcullis test LDAP CA")?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| format!("cannot write {name}: {e}"))
        };
        write("ca.pem", &ca)?;
        write("server.pem", &cert)?;
        write("server.key", &key)?;
        write("slapd.conf", &config(dir.path()))?;
        std::fs::create_dir_all(dir.path().join("db")).map_err(|e| e.to_string())?;
        let mut last = String::new();
        // A free port can be taken between probing and binding; try a few pairs.
        for _ in 0..3 {
            let ports = (free_port()?, free_port()?);
            match spawn(&dir, ports) {
                Ok(process) => {
                    let slapd = Slapd {
                        ldap_url: format!("ldap://127.0.0.1:{}", ports.0),
                        ldaps_url: format!("ldaps://127.0.0.1:{}", ports.1),
                        ca_pem: ca,
                        ca_path: dir.path().join("ca.pem"),
                        ports,
                        process,
                        dir,
                    };
                    seed(&slapd.ldap_url).await?;
                    return Ok(slapd);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The slapd shared by this test binary, started on first use.
    pub async fn shared() -> Result<&'static Slapd, String> {
        static PEER: OnceCell<Slapd> = OnceCell::const_new();
        PEER.get_or_try_init(Slapd::start).await
    }

    /// `127.0.0.1:PORT` of the plain port (for `host`).
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.ports.0)
    }

    /// Stops slapd (its ports stop answering).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts slapd again on the same ports with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        self.process.stop();
        self.process = spawn(&self.dir, self.ports)?;
        Ok(())
    }
}

fn spawn(dir: &tempfile::TempDir, ports: (u16, u16)) -> Result<PeerProcess, String> {
    let mut cmd = Command::new(SLAPD);
    cmd.arg("-f")
        .arg(dir.path().join("slapd.conf"))
        .arg("-h")
        .arg(format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            ports.0, ports.1
        ))
        .arg("-d")
        .arg("0");
    let mut process = PeerProcess::spawn("slapd", cmd, &dir.path().join("slapd.log"), false)?;
    for port in [ports.0, ports.1] {
        process.wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        )?;
    }
    Ok(process)
}

async fn seed(url: &str) -> Result<(), String> {
    let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(5));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .map_err(|e| format!("seed: {e}"))?;
    tokio::spawn(async move { conn.drive().await });
    ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD)
        .await
        .and_then(|r| r.success())
        .map_err(|e| format!("seed bind: {e}"))?;
    let users = "ou=Users,dc=example,dc=org";
    let groups = "ou=Groups,dc=example,dc=org";
    let person = |uid: &str, cn: &str, mail: &str, pw: &str| {
        (
            format!("uid={uid},{users}"),
            vec![
                ("objectClass", vec!["inetOrgPerson"]),
                ("uid", vec![uid]),
                ("cn", vec![cn]),
                ("sn", vec![cn]),
                ("mail", vec![mail]),
                ("userPassword", vec![pw]),
            ]
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    v.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
        )
    };
    let entry = |dn: String, attrs: Vec<(&str, Vec<String>)>| {
        (
            dn,
            attrs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Vec<_>>(),
        )
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let entries = vec![
        entry(
            BASE_DN.into(),
            vec![
                ("objectClass", s(&["dcObject", "organization"])),
                ("o", s(&["Example"])),
                ("dc", s(&["example"])),
            ],
        ),
        entry(
            users.into(),
            vec![
                ("objectClass", s(&["organizationalUnit"])),
                ("ou", s(&["Users"])),
            ],
        ),
        entry(
            groups.into(),
            vec![
                ("objectClass", s(&["organizationalUnit"])),
                ("ou", s(&["Groups"])),
            ],
        ),
        person("alice", "Alice Liddell", "alice@example.org", "alicepw"),
        person("bob", "Bob Builder", "bob@example.org", "bobpw"),
        person("twin1", "Twin One", "twins@example.org", "twinpw"),
        person("twin2", "Twin Two", "twins@example.org", "twinpw"),
        entry(
            format!("cn=admins,{groups}"),
            vec![
                ("objectClass", s(&["groupOfNames"])),
                ("cn", s(&["admins"])),
                ("member", vec![format!("uid=alice,{users}")]),
            ],
        ),
        entry(
            format!("cn=developers,{groups}"),
            vec![
                ("objectClass", s(&["groupOfNames"])),
                ("cn", s(&["developers"])),
                (
                    "member",
                    vec![format!("uid=alice,{users}"), format!("uid=bob,{users}")],
                ),
            ],
        ),
        entry(
            format!("cn=ops,{groups}"),
            vec![
                ("objectClass", s(&["posixGroup"])),
                ("cn", s(&["ops"])),
                ("gidNumber", s(&["5000"])),
                ("memberUid", s(&["bob"])),
            ],
        ),
    ];
    for (dn, attrs) in entries {
        let attrs: Vec<(String, HashSet<String>)> = attrs
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        ldap.add(&dn, attrs)
            .await
            .and_then(|r| r.success())
            .map_err(|e| format!("seed {dn}: {e}"))?;
    }
    let _ = ldap.unbind().await;
    Ok(())
}
