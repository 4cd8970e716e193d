//! Reading KubeSphere exports: `kubectl get users.iam.kubesphere.io -o yaml` (a `v1` List), single
//! `User` objects, several YAML documents, or the same as JSON; likewise `LoginRecord`s. Every
//! object is turned into a checked [`KsUser`] or [`KsLoginRecord`], or into a precise error that
//! names the file, the object and the field. Nothing here touches the store.
//!
//! KubeSphere facts used (spec §5.1, §7.1, §8): `spec.password` holds a bcrypt hash once
//! ks-controller-manager has reconciled the User, and plaintext before that (also after an admin's
//! `kubectl patch ... && kubectl annotate users NAME iam.kubesphere.io/password-encrypted-`);
//! 3.x links are the labels `iam.kubesphere.io/identify-provider` + `iam.kubesphere.io/origin-uid`,
//! 4.x links the annotations `iam.kubesphere.io/identity-provider.<idp>: <uid>`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use portcullis_core::names::{check_email, check_group, check_user_name};
use portcullis_store::UserState;
use serde_json::{Map, Value};

const LABEL_IDP: &str = "iam.kubesphere.io/identify-provider";
const LABEL_ORIGIN_UID: &str = "iam.kubesphere.io/origin-uid";
const ANNOTATION_IDP_PREFIX: &str = "iam.kubesphere.io/identity-provider.";
const ANNOTATION_UNINITIALIZED: &str = "iam.kubesphere.io/uninitialized";
const ANNOTATION_ENCRYPTED: &str = "iam.kubesphere.io/password-encrypted";
const ANNOTATION_PASSWORD_CHANGED: &str = "iam.kubesphere.io/last-password-change-time";
const LABEL_USER_REF: &str = "iam.kubesphere.io/user-ref";
const PRE_REGISTRATION: &str = "system:pre-registration";

/// Largest export file read (a 100,000-user export is about 60 MB of YAML).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Where an object came from, for messages: `users.yaml, items[3] (User "bob")`.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file as given on the command line.
    pub file: PathBuf,
    /// `document 2`, `items[3]` or `document 2, items[3]`.
    pub position: String,
    /// `User "bob"`, once the kind and name are known.
    pub object: Option<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.file.display(), self.position)?;
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        Ok(())
    }
}

/// The password found in `spec.password`.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// None (an identity-provider user, or a 3.x Disabled local user).
    None,
    /// A bcrypt hash, kept as is.
    Hash(String),
    /// Plaintext not yet hashed by KubeSphere; hashed with argon2id on import.
    Plain(String),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Password::None => "None",
            Password::Hash(_) => "Hash(..)",
            Password::Plain(_) => "Plain(<redacted>)",
        })
    }
}

/// A KubeSphere User, checked.
#[derive(Debug, Clone)]
pub struct KsUser {
    /// Where it came from.
    pub origin: Origin,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`, kept as the Portcullis user id.
    pub uid: Option<String>,
    /// `spec.email`.
    pub email: Option<String>,
    /// `spec.displayName`.
    pub display_name: Option<String>,
    /// `spec.groups`.
    pub groups: Vec<String>,
    /// `spec.password`.
    pub password: Password,
    /// `status.state` (derived as KubeSphere 3.x's controller does when absent).
    pub state: UserState,
    /// Annotation `iam.kubesphere.io/uninitialized: "true"`.
    pub uninitialized: bool,
    /// `metadata.creationTimestamp`, Unix ms.
    pub created_at: Option<i64>,
    /// `status.lastLoginTime`, Unix ms.
    pub last_login_at: Option<i64>,
    /// Annotation `iam.kubesphere.io/last-password-change-time`, Unix ms.
    pub password_changed_at: Option<i64>,
    /// Identity links `(idp name, upstream uid)`, from 3.x labels and 4.x annotations.
    pub links: Vec<(String, String)>,
}

/// A KubeSphere LoginRecord, checked.
#[derive(Debug, Clone)]
pub struct KsLoginRecord {
    /// Where it came from.
    pub origin: Origin,
    /// Stable id derived from the object, so a second import finds it again.
    pub id: String,
    /// Label `iam.kubesphere.io/user-ref`.
    pub user: String,
    /// `metadata.creationTimestamp`, Unix ms.
    pub at: i64,
    /// `spec.type`.
    pub login_type: String,
    /// `spec.provider`.
    pub provider: String,
    /// `spec.sourceIP`.
    pub source_ip: String,
    /// `spec.userAgent`.
    pub user_agent: String,
    /// `spec.success`.
    pub success: bool,
    /// `spec.reason`.
    pub reason: String,
}

/// What a skipped object was, so the summary counts it in the right line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A KubeSphere User.
    User,
    /// A KubeSphere LoginRecord.
    Record,
    /// Anything else.
    Other,
}

/// One object of an export.
#[derive(Debug)]
pub enum Item {
    /// A user to import.
    User(Box<KsUser>),
    /// A login record to import.
    Record(Box<KsLoginRecord>),
    /// Not imported, with the reason.
    Skipped(Kind, Origin, String),
}

/// Reads one export file. `Err` holds every problem found, each naming the file and object.
pub fn read_file(path: &Path) -> Result<Vec<Item>, Vec<String>> {
    let one = |m: String| vec![format!("{}: {m}", path.display())];
    let meta = std::fs::metadata(path).map_err(|e| one(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(one(format!(
            "is {} bytes; the limit is {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| one(format!("cannot read: {e}")))?;
    let docs = parse_documents(&text).map_err(|e| one(format!("not valid YAML: {e}")))?;
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let many = docs.len() > 1;
    for (d, doc) in docs.into_iter().enumerate() {
        let doc_pos = if many {
            format!("document {}", d + 1)
        } else {
            "document".to_string()
        };
        let list = doc.get("items").and_then(Value::as_array).filter(|_| {
            doc.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
        });
        match list {
            Some(list) => {
                for (i, obj) in list.iter().enumerate() {
                    let position = if many {
                        format!("{doc_pos}, items[{i}]")
                    } else {
                        format!("items[{i}]")
                    };
                    object(path, position, obj, &mut items, &mut errors);
                }
            }
            None => object(path, doc_pos, &doc, &mut items, &mut errors),
        }
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(errors)
    }
}

fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut options = serde_saphyr::Options::default();
    if let Some(budget) = options.budget.as_mut() {
        // Exports are big but flat: allow millions of nodes, keep the depth limit.
        budget.max_nodes = 50_000_000;
        budget.max_events = 100_000_000;
        budget.max_documents = 1_000_000;
        budget.max_total_scalar_bytes = 1 << 30;
        budget.max_reader_input_bytes = Some(1 << 30);
    }
    options.with_snippet = false;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let inner = e.without_snippet();
            use serde_saphyr::MessageFormatter;
            serde_saphyr::UserMessageFormatter
                .format_message(inner)
                .to_string()
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn object(
    path: &Path,
    position: String,
    obj: &Value,
    items: &mut Vec<Item>,
    errors: &mut Vec<String>,
) {
    let mut origin = Origin {
        file: path.to_path_buf(),
        position,
        object: None,
    };
    let Some(map) = obj.as_object() else {
        errors.push(format!(
            "{origin}: not an object (a Kubernetes resource is a mapping)"
        ));
        return;
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    origin.object = Some(match name {
        Some(n) => format!("{} {n:?}", if kind.is_empty() { "object" } else { kind }),
        None => format!(
            "{} without metadata.name",
            if kind.is_empty() { "object" } else { kind }
        ),
    });
    let ours = api.starts_with("iam.kubesphere.io/");
    if kind == "User"
        && ours
        && let Some(n) = name
        && n != PRE_REGISTRATION
        && let Err(e) = check_user_name(n)
    {
        // Valid in KubeSphere, but not a name Portcullis can hold.
        items.push(Item::Skipped(
            Kind::User,
            origin,
            format!("not a valid Portcullis user name: {e}"),
        ));
        return;
    }
    let result = match kind {
        "User" if ours => user(map).map(|u| {
            Item::User(Box::new(KsUser {
                origin: origin.clone(),
                ..u
            }))
        }),
        "LoginRecord" if ours => record(map).map(|r| match r {
            Ok(r) => Item::Record(Box::new(KsLoginRecord {
                origin: origin.clone(),
                ..r
            })),
            Err(reason) => Item::Skipped(Kind::Record, origin.clone(), reason),
        }),
        "" => Err("no `kind`: expected a KubeSphere User or LoginRecord, or a List of them".into()),
        _ => Ok(Item::Skipped(
            Kind::Other,
            origin.clone(),
            format!("{kind} ({api}) is not a KubeSphere User or LoginRecord"),
        )),
    };
    match result {
        Ok(Item::User(u)) if u.name == PRE_REGISTRATION => items.push(Item::Skipped(
            Kind::User,
            origin,
            "the pre-registration placeholder is not a real user".into(),
        )),
        Ok(item) => items.push(item),
        Err(e) => errors.push(format!("{origin}: {e}")),
    }
}

fn field<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut cur: Option<&Value> = None;
    for (i, part) in path.split('.').enumerate() {
        cur = if i == 0 {
            map.get(part)
        } else {
            cur?.get(part)
        };
    }
    cur.filter(|v| !v.is_null())
}

fn string(map: &Map<String, Value>, path: &str) -> Result<Option<String>, String> {
    match field(map, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{path}: expected a string, found {other}")),
    }
}

fn string_map<'a>(
    map: &'a Map<String, Value>,
    path: &str,
) -> Result<Vec<(&'a str, &'a str)>, String> {
    match field(map, path) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.as_str(), s.as_str())),
                other => Err(format!("{path}.{k}: expected a string, found {other}")),
            })
            .collect(),
        Some(other) => Err(format!("{path}: expected a mapping, found {other}")),
    }
}

fn timestamp(map: &Map<String, Value>, path: &str) -> Result<Option<i64>, String> {
    string(map, path)?
        .map(|s| rfc3339_ms(&s).map_err(|e| format!("{path}: {e}")))
        .transpose()
}

/// Parses an RFC 3339 time (as Kubernetes writes it) to Unix milliseconds.
pub fn rfc3339_ms(s: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{s:?} is out of range"))
}

/// Whether `s` is a bcrypt hash as Go's `bcrypt.Cost` accepts it (what ks-controller-manager
/// checks before deciding that a password is already hashed).
pub fn is_bcrypt_hash(s: &str) -> bool {
    bcrypt::HashParts::from_str(s).is_ok_and(|h| (4..=31).contains(&h.get_cost()))
}

fn user(map: &Map<String, Value>) -> Result<KsUser, String> {
    let name = string(map, "metadata.name")?.ok_or("metadata.name is missing")?;
    let email = string(map, "spec.email")?.filter(|s| !s.is_empty());
    if let Some(e) = &email {
        check_email(e).map_err(|e| format!("spec.email: {e}"))?;
    }
    let groups = match field(map, "spec.groups") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, g)| match g {
                Value::String(g) => check_group(g)
                    .map(|_| g.clone())
                    .map_err(|e| format!("spec.groups[{i}]: {e}")),
                other => Err(format!(
                    "spec.groups[{i}]: expected a string, found {other}"
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("spec.groups: expected a list, found {other}")),
    };
    let annotations = string_map(map, "metadata.annotations")?;
    let labels = string_map(map, "metadata.labels")?;
    let annotation = |k: &str| annotations.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
    let label = |k: &str| labels.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);

    let raw_password = string(map, "spec.password")?.unwrap_or_default();
    let encrypted = annotation(ANNOTATION_ENCRYPTED).map(|v| v.trim().eq_ignore_ascii_case("true"));
    let password = if raw_password.is_empty() {
        Password::None
    } else if is_bcrypt_hash(&raw_password) {
        Password::Hash(raw_password)
    } else if raw_password.starts_with("$2") || encrypted == Some(true) {
        return Err(format!(
            "spec.password is not a valid bcrypt hash{} (a damaged export?)",
            if encrypted == Some(true) {
                format!(" although {ANNOTATION_ENCRYPTED} is \"true\"")
            } else {
                String::new()
            }
        ));
    } else {
        Password::Plain(raw_password)
    };

    let mut links = Vec::new();
    match (label(LABEL_IDP), label(LABEL_ORIGIN_UID)) {
        (Some(idp), Some(uid)) if !idp.is_empty() && !uid.is_empty() => {
            links.push((idp.to_string(), uid.to_string()))
        }
        (None, None) => {}
        (idp, uid) => {
            return Err(format!(
                "labels {LABEL_IDP} ({}) and {LABEL_ORIGIN_UID} ({}) must be set together",
                idp.map_or("absent".into(), |v| format!("{v:?}")),
                uid.map_or("absent".into(), |v| format!("{v:?}"))
            ));
        }
    }
    for (k, uid) in &annotations {
        if let Some(idp) = k.strip_prefix(ANNOTATION_IDP_PREFIX) {
            if idp.is_empty() || uid.is_empty() {
                return Err(format!(
                    "metadata.annotations.{k}: an identity-provider annotation needs a provider name and a uid"
                ));
            }
            let link = (idp.to_string(), uid.to_string());
            if !links.contains(&link) {
                links.push(link);
            }
        }
    }
    for (idp, uid) in &links {
        if idp.len() > 512 || uid.len() > 512 || uid.chars().any(char::is_control) {
            return Err(format!(
                "identity link {idp}/{uid:?} is too long or has control characters"
            ));
        }
    }

    let state = match string(map, "status.state")?.filter(|s| !s.is_empty()) {
        Some(s) => UserState::parse(&s).ok_or_else(|| {
            format!(
                "status.state: unknown state {s:?} (expected Active, Disabled or AuthLimitExceeded)"
            )
        })?,
        // KubeSphere 3.x's controller: no password and no identity provider means Disabled.
        None if password == Password::None && links.is_empty() => UserState::Disabled,
        None => UserState::Active,
    };
    let uninitialized = annotation(ANNOTATION_UNINITIALIZED).is_some_and(|v| v == "true");
    let password_changed_at = annotation(ANNOTATION_PASSWORD_CHANGED)
        .map(|v| {
            rfc3339_ms(v)
                .map_err(|e| format!("metadata.annotations.{ANNOTATION_PASSWORD_CHANGED}: {e}"))
        })
        .transpose()?;
    Ok(KsUser {
        origin: Origin {
            file: PathBuf::new(),
            position: String::new(),
            object: None,
        },
        uid: string(map, "metadata.uid")?.filter(|s| !s.is_empty() && s.len() <= 128),
        email,
        display_name: string(map, "spec.displayName")?.filter(|s| !s.is_empty()),
        groups,
        password,
        state,
        uninitialized,
        created_at: timestamp(map, "metadata.creationTimestamp")?,
        last_login_at: timestamp(map, "status.lastLoginTime")?,
        password_changed_at,
        links,
        name,
    })
}

/// `Ok(Err(reason))`: a well-formed record that is not imported.
fn record(map: &Map<String, Value>) -> Result<Result<KsLoginRecord, String>, String> {
    let name = string(map, "metadata.name")?.ok_or("metadata.name is missing")?;
    let at = timestamp(map, "metadata.creationTimestamp")?
        .ok_or("metadata.creationTimestamp is missing")?;
    let success = match field(map, "spec.success") {
        Some(Value::Bool(b)) => *b,
        None => return Err("spec.success is missing".into()),
        Some(other) => {
            return Err(format!(
                "spec.success: expected true or false, found {other}"
            ));
        }
    };
    let labels = string_map(map, "metadata.labels")?;
    let Some(user) = labels
        .iter()
        .find(|(k, _)| *k == LABEL_USER_REF)
        .map(|(_, v)| v.to_string())
    else {
        return Ok(Err(format!(
            "no {LABEL_USER_REF} label: the user is unknown"
        )));
    };
    let uid = string(map, "metadata.uid")?.filter(|s| !s.is_empty());
    Ok(Ok(KsLoginRecord {
        origin: Origin {
            file: PathBuf::new(),
            position: String::new(),
            object: None,
        },
        id: format!("kubesphere-{}", uid.unwrap_or(name)),
        user,
        at,
        login_type: string(map, "spec.type")?.unwrap_or_else(|| "Token".into()),
        provider: string(map, "spec.provider")?.unwrap_or_default(),
        source_ip: string(map, "spec.sourceIP")?.unwrap_or_default(),
        user_agent: string(map, "spec.userAgent")?.unwrap_or_default(),
        success,
        reason: string(map, "spec.reason")?.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Item>, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        std::fs::write(&p, text).unwrap();
        read_file(&p)
    }

    #[test]
    fn bcrypt_detection() {
        let h = bcrypt::hash("pw", 4).unwrap();
        assert!(is_bcrypt_hash(&h));
        assert!(is_bcrypt_hash(&h.replacen("$2b$", "$2a$", 1)));
        assert!(!is_bcrypt_hash("P@88w0rd"));
        assert!(!is_bcrypt_hash(&h[..59]));
    }

    #[test]
    fn links_states_and_plaintext() {
        let items = parse(
            r#"
apiVersion: iam.kubesphere.io/v1beta1
kind: User
metadata:
  name: ann
  annotations:
    iam.kubesphere.io/identity-provider.github: "583231"
    iam.kubesphere.io/identity-provider.corp-ldap: ann@corp
  labels:
    iam.kubesphere.io/identify-provider: cas
    iam.kubesphere.io/origin-uid: ann
spec:
  password: not-hashed-yet
"#,
        )
        .unwrap();
        let Item::User(u) = &items[0] else { panic!() };
        assert_eq!(u.password, Password::Plain("not-hashed-yet".into()));
        assert_eq!(u.state, UserState::Active);
        assert_eq!(u.links.len(), 3);
        assert!(u.links.contains(&("github".into(), "583231".into())));
    }

    #[test]
    fn precise_errors() {
        let errs = parse(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {name: ok}\n- apiVersion: iam.kubesphere.io/v1alpha2\n  kind: User\n  metadata: {name: bad}\n  status: {state: Frozen}\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains(
                "x.yaml, items[1] (User \"bad\"): status.state: unknown state \"Frozen\""
            ),
            "{errs:?}"
        );
    }
}
