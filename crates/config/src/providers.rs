//! `authentication.oauthOptions.identityProviders[]` (spec §1.6).

use serde_json::{Map, Number, Value};

use crate::error::Report;
use crate::fields::{Field, Fields, suggest};
use crate::raw::{Kind, Node};
use crate::{IdentityProviderConfig, MappingMethod};

const PROVIDER_KEYS: &[&str] = &[
    "name",
    "type",
    "mappingMethod",
    "disableLoginConfirmation",
    "displayName",
    "hidden",
    "disabled",
    "allowedGroups",
    "groupsPrefix",
    "provider",
];

/// Longest Kubernetes label value, which a provider name must be (label
/// `iam.kubesphere.io/identify-provider`).
const MAX_NAME_LEN: usize = 63;

pub(crate) fn read(
    report: &mut Report,
    field: &Field,
    known_types: &[&str],
) -> Vec<IdentityProviderConfig> {
    let Some(items) = field.list(report) else {
        return Vec::new();
    };
    let mut providers: Vec<IdentityProviderConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", field.path);
        let line = item.line().or(field.line);
        if !matches!(item.kind, Kind::Map(_)) {
            report.error(
                line,
                &path,
                format!(
                    "expected an identity provider (a map), found {}",
                    item.type_name()
                ),
            );
            continue;
        }
        let Some(provider) = read_one(report, item, path, line, known_types) else {
            continue;
        };
        if let Some(first) = providers.iter().find(|p| p.name == provider.name) {
            let at = first.line.map_or(String::new(), |l| format!(" (line {l})"));
            report.error(
                provider.line,
                &format!("{}.name", provider.path),
                format!(
                    "duplicate identity provider name {:?}: already used by {}{at}",
                    provider.name, first.path
                ),
            );
            continue;
        }
        providers.push(provider);
    }
    providers
}

fn read_one(
    report: &mut Report,
    item: &Node,
    path: String,
    line: Option<usize>,
    known_types: &[&str],
) -> Option<IdentityProviderConfig> {
    let f = Fields::read(report, Some(item), &path, line, PROVIDER_KEYS, &|_| None);
    let name = match f.get("name").and_then(|v| v.string(report)) {
        Some(name) if !name.is_empty() => match check_name(&name) {
            Ok(()) => Some(name),
            Err(message) => {
                report.error(f.line_of("name"), &f.key_path("name"), message);
                None
            }
        },
        _ => {
            let message = "an identity provider needs a `name` (it is the callback path segment and a label value)";
            report.error(f.line_of("name"), &f.key_path("name"), message);
            None
        }
    };
    let provider_type = match f.get("type").and_then(|v| v.string(report)) {
        Some(t) if !t.is_empty() => check_type(report, &f, t, known_types),
        _ => {
            report.error(
                f.line_of("type"),
                &f.key_path("type"),
                format!(
                    "an identity provider needs a `type`; {}",
                    known_list(known_types)
                ),
            );
            None
        }
    };
    let mapping_method = f
        .get("mappingMethod")
        .and_then(|v| mapping_method(report, &v))
        .unwrap_or(MappingMethod::Manual);
    let flag = |r: &mut Report, key: &str| f.get(key).and_then(|v| v.bool(r)).unwrap_or(false);
    let disable_login_confirmation = flag(report, "disableLoginConfirmation");
    let hidden = flag(report, "hidden");
    let disabled = flag(report, "disabled");
    let display_name = f
        .get("displayName")
        .and_then(|v| v.string(report))
        .filter(|s| !s.is_empty());
    let allowed_groups = f
        .get("allowedGroups")
        .and_then(|v| v.strings(report))
        .map(|items| {
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for (group, path, line) in items {
                let group = group.trim().to_owned();
                if group.is_empty() {
                    report.error(line, &path, "a group name cannot be empty");
                } else if !out.contains(&group) {
                    out.push(group);
                }
            }
            out
        })
        .unwrap_or_default();
    let groups_prefix = f
        .get("groupsPrefix")
        .and_then(|v| v.string(report))
        .unwrap_or_default();
    if groups_prefix.starts_with("system:") {
        report.error(
            f.line_of("groupsPrefix"),
            &f.key_path("groupsPrefix"),
            format!(
                "groupsPrefix {groups_prefix:?} would put upstream groups in Kubernetes' reserved \
                 `system:` namespace; choose another prefix (for example \"github:\")"
            ),
        );
    }
    let provider = match f.get("provider") {
        None => Map::new(),
        Some(v) => match &v.node.kind {
            Kind::Map(_) => match to_json(report, v.node, &v.path) {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            _ => {
                let found = v.node.type_name();
                report.error(
                    v.line,
                    &v.path,
                    format!("expected a map of provider options, found {found}"),
                );
                Map::new()
            }
        },
    };
    Some(IdentityProviderConfig {
        name: name?,
        provider_type: provider_type?,
        mapping_method,
        disable_login_confirmation,
        display_name,
        hidden,
        disabled,
        allowed_groups,
        groups_prefix,
        provider,
        path,
        line,
    })
}

/// A name is a path segment and a Kubernetes label value.
fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if valid_chars && ends_ok && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(format!(
            "invalid identity provider name {name:?}: it must be a valid label value (at most \
             {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending \
             with a letter or digit), because it is used in the callback path and as a label"
        ))
    }
}

fn known_list(known_types: &[&str]) -> String {
    if known_types.is_empty() {
        return "no provider types are available in this build".to_owned();
    }
    let mut sorted = known_types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    format!("known: {}", sorted.join(", "))
}

fn check_type(
    report: &mut Report,
    f: &Fields,
    value: String,
    known_types: &[&str],
) -> Option<String> {
    // The lowercase-s spelling is in KubeSphere's own docs (and existed briefly in its code).
    let value = if value == "AliyunIDaasProvider" {
        "AliyunIDaaSProvider".to_owned()
    } else {
        value
    };
    if known_types.contains(&value.as_str()) {
        return Some(value);
    }
    let hint = suggest(&value, known_types).map_or(String::new(), |s| {
        format!(" (did you mean `{s}`? types are case-sensitive)")
    });
    report.error(
        f.line_of("type"),
        &f.key_path("type"),
        format!(
            "unknown provider type {value:?}; {}{hint}",
            known_list(known_types)
        ),
    );
    None
}

fn mapping_method(report: &mut Report, field: &Field) -> Option<MappingMethod> {
    const VALID: [&str; 4] = ["auto", "lookup", "manual", "mixed"];
    let value = field.string(report)?;
    match value.as_str() {
        "auto" => Some(MappingMethod::Auto),
        "lookup" => Some(MappingMethod::Lookup),
        // KubeSphere 3.x never implemented `mixed`; Portcullis reads it as `manual`.
        "manual" | "mixed" => Some(MappingMethod::Manual),
        other => {
            let hint =
                suggest(other, &VALID).map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
            report.error(
                field.line,
                &field.path,
                format!(
                    "unknown mapping method {other:?}; valid: {}{hint}",
                    VALID.join(", ")
                ),
            );
            None
        }
    }
}

/// The free-form `provider:` map as JSON, keys in their original case.
fn to_json(report: &mut Report, node: &Node, path: &str) -> Value {
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
            (Ok(v), _) => Value::from(v),
            (_, Ok(v)) => Value::from(v),
            _ => Value::String(i.to_string()),
        },
        Kind::Float(x) => Number::from_f64(*x)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(node.scalar_text(report.text).unwrap_or_default())),
        Kind::Str(s) => Value::String(s.clone()),
        Kind::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(report, item, &format!("{path}[{i}]")))
                .collect(),
        ),
        Kind::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                match key.scalar_text(report.text) {
                    Some(k) => {
                        let child_path = format!("{path}.{k}");
                        let child = match &value.kind {
                            // A secret may come from a file or the environment.
                            Kind::Str(s) if crate::model::is_secret_key(&k) => {
                                crate::secret_ref::resolve(
                                    report,
                                    value.line().or(key.line()),
                                    &child_path,
                                    s.clone(),
                                )
                                .map_or(Value::Null, Value::String)
                            }
                            _ => to_json(report, value, &child_path),
                        };
                        map.insert(k, child);
                    }
                    None => report.error(
                        key.line(),
                        path,
                        format!("keys must be strings, found {}", key.type_name()),
                    ),
                }
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_are_label_values() {
        for ok in [
            "github",
            "GitHub",
            "ldap-1",
            "a",
            "my_idp.v2",
            &"a".repeat(63),
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-github",
            "github-",
            "git hub",
            "git/hub",
            "ünï",
            ".a",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
