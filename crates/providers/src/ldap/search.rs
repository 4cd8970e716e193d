//! The searches: the user entry (escaped filter, at most one match) and the user's groups (`memberOf`-style
//! attributes on the entry and/or a group search).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ldap3::{ResultEntry, Scope, SearchEntry, SearchOptions, SearchResult, ldap_escape};
use portcullis_idp::{ProviderError, ProviderOptions};

use super::{LdapIdentityProvider, Stage, is_stale};

/// An LDAP attribute description: a name or OID, with options (`cn;lang-en`).
fn attribute(
    options: &ProviderOptions,
    key: &str,
    default: Option<&str>,
) -> Result<Option<String>, ProviderError> {
    let value = options
        .get_str(key)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let Some(value) = value.or_else(|| default.map(str::to_owned)) else {
        return Ok(None);
    };
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.'))
    {
        Ok(Some(value))
    } else {
        Err(ProviderError::misconfigured(format!(
            "option `{key}` is not an LDAP attribute name: {value:?}"
        )))
    }
}

/// A filter option, wrapped in parentheses when written without, and checked by ldap3's parser.
fn filter(options: &ProviderOptions, key: &str) -> Result<String, ProviderError> {
    let Some(raw) = options
        .get_str(key)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    else {
        return Ok(String::new());
    };
    let wrapped = if raw.starts_with('(') {
        raw
    } else {
        format!("({raw})")
    };
    ldap3::parse_filter(format!("(&(objectClass=*){wrapped})")).map_err(|()| {
        ProviderError::misconfigured(format!(
            "option `{key}` is not a valid LDAP filter: {wrapped:?}"
        ))
    })?;
    Ok(wrapped)
}

/// How to find a user.
#[derive(Debug, Clone)]
pub(crate) struct UserQuery {
    pub base: String,
    extra_filter: String,
    pub login_attribute: String,
    pub mail_attribute: Option<String>,
    pub display_name_attribute: Option<String>,
}

impl UserQuery {
    pub fn from_options(options: &ProviderOptions) -> Result<Self, ProviderError> {
        Ok(UserQuery {
            base: options.require_str("userSearchBase")?.trim().to_owned(),
            extra_filter: filter(options, "userSearchFilter")?,
            login_attribute: attribute(options, "loginAttribute", None)?.ok_or_else(|| {
                ProviderError::misconfigured("missing required option `loginAttribute`")
            })?,
            mail_attribute: attribute(options, "mailAttribute", Some("mail"))?,
            display_name_attribute: attribute(options, "displayNameAttribute", None)?,
        })
    }

    /// `(&(<loginAttribute>=<escaped username>)<userSearchFilter>)`.
    pub fn filter(&self, username: &str) -> String {
        format!(
            "(&({}={}){})",
            self.login_attribute,
            ldap_escape(username),
            self.extra_filter
        )
    }
}

/// How to find a user's groups.
#[derive(Debug, Clone)]
pub(crate) struct GroupConfig {
    base: Option<String>,
    filter: String,
    member_attribute: String,
    /// The user attribute the group lists; `None` means the user's DN.
    user_member_attribute: Option<String>,
    name_attribute: String,
    member_of_attribute: Option<String>,
}

impl GroupConfig {
    pub fn from_options(options: &ProviderOptions) -> Result<Self, ProviderError> {
        let user_member_attribute = attribute(options, "userMemberAttribute", None)?.filter(|a| {
            !a.eq_ignore_ascii_case("dn") && !a.eq_ignore_ascii_case("distinguishedName")
        });
        Ok(GroupConfig {
            base: options
                .get_str("groupSearchBase")?
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            filter: filter(options, "groupSearchFilter")?,
            member_attribute: attribute(options, "groupMemberAttribute", Some("member"))?
                .unwrap_or_default(),
            user_member_attribute,
            name_attribute: attribute(options, "groupNameAttribute", Some("cn"))?
                .unwrap_or_default(),
            member_of_attribute: attribute(options, "memberOfAttribute", None)?,
        })
    }
}

/// A search result entry with case-insensitive attribute lookup.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
}

impl Entry {
    fn all(&self, attribute: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }

    /// The first non-empty value of `attribute`.
    pub fn first(&self, attribute: &str) -> Option<&str> {
        self.all(attribute)
            .iter()
            .map(String::as_str)
            .find(|v| !v.trim().is_empty())
    }
}

/// The value of a DN's first RDN (`cn=admins,ou=Groups,...` → `admins`); the input itself if it is not a DN.
fn rdn_value(dn: &str) -> String {
    let mut first = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        match c {
            ',' | '+' if !escaped => break,
            '\\' if !escaped => escaped = true,
            _ => {
                escaped = false;
                first.push(c);
            }
        }
    }
    match first.split_once('=') {
        Some((_, v)) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => dn.to_owned(),
    }
}

/// Entries of a search answer; references are skipped and an entry ldap3 cannot decode is an upstream error.
fn entries(raw: Vec<ResultEntry>) -> Result<Vec<Entry>, ProviderError> {
    raw.into_iter()
        .filter(|e| !e.is_ref() && !e.is_intermediate())
        .map(|e| {
            // ldap3 panics on malformed BER; a broken server must not crash the login task.
            catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(e)))
                .map(|s| Entry {
                    dn: s.dn,
                    attrs: s.attrs,
                })
                .map_err(|_| {
                    ProviderError::upstream("the LDAP server answered a malformed search entry")
                })
        })
        .collect()
}

impl LdapIdentityProvider {
    /// One search on a search connection, retried once on a fresh connection if a pooled one is dead.
    async fn search(
        &self,
        stage: Stage,
        base: &str,
        filter: &str,
        attrs: &[&str],
        size_limit: i32,
    ) -> Result<Vec<Entry>, ProviderError> {
        for _ in 0..2 {
            let mut lease = self.search_pool.acquire(|| self.open_search()).await?;
            let answer = lease
                .ldap
                .with_timeout(self.connector.timeout)
                .with_search_options(SearchOptions::new().sizelimit(size_limit))
                .search(base, Scope::Subtree, filter, attrs.to_vec())
                .await;
            match answer {
                Err(e) if lease.reused && is_stale(&e) => {
                    self.search_pool.clear();
                    continue;
                }
                Err(e) => return Err(self.classify(stage, e)),
                // 4 = sizeLimitExceeded: the entries so far are returned and the caller judges.
                Ok(SearchResult(found, result)) if result.rc == 0 || result.rc == 4 => {
                    lease.release();
                    return entries(found);
                }
                Ok(SearchResult(_, result)) => {
                    return Err(self.classify(stage, ldap3::LdapError::LdapResult { result }));
                }
            }
        }
        Err(ProviderError::upstream(format!(
            "{}: the connection was lost twice",
            self.connector.url
        )))
    }

    /// The one entry matching `username`.
    pub(super) async fn find_user(&self, username: &str) -> Result<Entry, ProviderError> {
        let q = &self.query;
        let g = &self.groups;
        let attrs: Vec<&str> = [
            Some(q.login_attribute.as_str()),
            q.mail_attribute.as_deref(),
            q.display_name_attribute.as_deref(),
            g.member_of_attribute.as_deref(),
            g.user_member_attribute.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let filter = q.filter(username);
        let mut found = self
            .search(Stage::UserSearch, &q.base, &filter, &attrs, 2)
            .await?;
        match found.len() {
            0 => Err(ProviderError::bad_credentials(format!(
                "ldap: no user matches {filter}"
            ))),
            1 => Ok(found.remove(0)),
            _ => {
                tracing::warn!(provider = %self.name, %filter, "several LDAP entries match one user name; refusing the login");
                Err(ProviderError::bad_credentials(format!(
                    "ldap: several entries match {filter}; the login attribute must be unique"
                )))
            }
        }
    }

    /// The names of the user's groups: from `memberOfAttribute` values and from the group search.
    pub(super) async fn find_groups(&self, user: &Entry) -> Result<Vec<String>, ProviderError> {
        let g = &self.groups;
        let mut names: Vec<String> = match &g.member_of_attribute {
            Some(attr) => user.all(attr).iter().map(|dn| rdn_value(dn)).collect(),
            None => Vec::new(),
        };
        if let Some(base) = &g.base {
            let values: Vec<String> = match &g.user_member_attribute {
                None => vec![user.dn.clone()],
                Some(attr) => user.all(attr).to_vec(),
            };
            if !values.is_empty() {
                let any: String = values
                    .iter()
                    .map(|v| format!("({}={})", g.member_attribute, ldap_escape(v.as_str())))
                    .collect();
                let class = if g.filter.is_empty() {
                    "(objectClass=*)"
                } else {
                    g.filter.as_str()
                };
                let filter = format!("(&{class}(|{any}))");
                let found = self
                    .search(
                        Stage::GroupSearch,
                        base,
                        &filter,
                        &[g.name_attribute.as_str()],
                        0,
                    )
                    .await?;
                names.extend(found.iter().map(|e| {
                    e.first(&g.name_attribute)
                        .map(str::to_owned)
                        .unwrap_or_else(|| rdn_value(&e.dn))
                }));
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_filter_escapes_the_name() {
        let o =
            ProviderOptions::from_value(json!({"userSearchBase": "dc=x", "loginAttribute": "uid",
                                                   "userSearchFilter": "objectClass=person"}))
            .unwrap();
        let q = UserQuery::from_options(&o).unwrap();
        assert_eq!(
            q.filter("*)(uid=*"),
            r"(&(uid=\2a\29\28uid=\2a)(objectClass=person))"
        );
        assert_eq!(q.filter("a\\b\0"), r"(&(uid=a\5cb\00)(objectClass=person))");
        assert!(ldap3::parse_filter(q.filter("*)(|(uid=*")).is_ok());
    }

    #[test]
    fn bad_filters_and_attributes_name_the_key() {
        let o =
            ProviderOptions::from_value(json!({"userSearchBase": "dc=x", "loginAttribute": "uid",
                                                   "userSearchFilter": "(&(a=b)"}))
            .unwrap();
        let e = UserQuery::from_options(&o).unwrap_err();
        assert!(e.to_string().contains("`userSearchFilter`"), "{e}");
        let o = ProviderOptions::from_value(
            json!({"userSearchBase": "dc=x", "loginAttribute": "uid)(x=*"}),
        )
        .unwrap();
        assert!(
            UserQuery::from_options(&o)
                .unwrap_err()
                .to_string()
                .contains("`loginAttribute`")
        );
    }

    #[test]
    fn rdn_values() {
        assert_eq!(rdn_value("cn=admins,ou=Groups,dc=example,dc=org"), "admins");
        assert_eq!(rdn_value(r"cn=a\,b,dc=x"), "a,b");
        assert_eq!(rdn_value("plain-name"), "plain-name");
    }
}
