//! ID token claim checks (OpenID Connect Core §3.1.3.7) with an explicit clock, and the claims-to-[`Identity`]
//! mapping.

use portcullis_idp::{Identity, ProviderError};
use serde_json::{Map, Value};

use crate::http::excerpt;

/// What an ID token's claims must satisfy once its signature is verified.
#[derive(Debug, Clone)]
pub struct IdTokenCheck<'a> {
    /// The expected `iss`; `None` when the provider has no `issuer` (then any `iss` is accepted).
    pub issuer: Option<&'a str>,
    /// The provider's `clientID`: must be an audience (and the `azp` when there is one).
    pub client_id: &'a str,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
}

impl IdTokenCheck<'_> {
    /// Checks `iss`, `aud`, `azp`, `exp`, `nbf`, `iat` (against `now`, Unix seconds) and `nonce`.
    ///
    /// A nonce mismatch is [`BadCredentials`](ProviderError::BadCredentials) (the callback does not belong to the
    /// login that sent the browser away); every other failure is [`Upstream`](ProviderError::Upstream): the
    /// upstream issued a token this client must not accept.
    pub fn check(
        &self,
        claims: &Map<String, Value>,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<(), ProviderError> {
        let bad =
            |why: String| ProviderError::upstream(format!("the ID token is not acceptable: {why}"));
        let iss = claims.get("iss").and_then(Value::as_str);
        match (self.issuer, iss) {
            (_, None) => return Err(bad("it has no `iss`".into())),
            (Some(want), Some(got)) if want != got => {
                return Err(bad(format!(
                    "`iss` is {:?}, expected {want:?}",
                    excerpt(got, 200)
                )));
            }
            _ => {}
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => return Err(bad("it has no `aud`".into())),
        };
        if !audiences.contains(&self.client_id) {
            return Err(bad(format!(
                "`aud` {audiences:?} does not contain the clientID {:?}",
                self.client_id
            )));
        }
        let azp = claims.get("azp").and_then(Value::as_str);
        if audiences.len() > 1 && azp.is_none() {
            return Err(bad("it has several audiences and no `azp`".into()));
        }
        if let Some(azp) = azp
            && azp != self.client_id
        {
            return Err(bad(format!(
                "`azp` is {:?}, not the clientID",
                excerpt(azp, 100)
            )));
        }
        let time = |key: &str| -> Result<Option<u64>, ProviderError> {
            match claims.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(f) if f >= 0.0 => Ok(Some(f as u64)),
                    _ => Err(bad(format!("`{key}` is not a valid time"))),
                },
                Some(_) => Err(bad(format!("`{key}` is not a number"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| bad("it has no `exp`".into()))?;
        if exp.saturating_add(self.leeway) < now {
            return Err(bad(format!(
                "it expired {}s ago (allowed clock skew {}s)",
                now - exp,
                self.leeway
            )));
        }
        let iat = time("iat")?.ok_or_else(|| bad("it has no `iat`".into()))?;
        if iat > now.saturating_add(self.leeway) {
            return Err(bad(format!(
                "it was issued {}s in the future (allowed clock skew {}s); check the clocks",
                iat - now,
                self.leeway
            )));
        }
        if let Some(nbf) = time("nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(bad(format!("it is not valid before {nbf} (now {now})")));
        }
        if let Some(expected) = nonce {
            match claims.get("nonce").and_then(Value::as_str) {
                Some(got) if got == expected => {}
                Some(_) => {
                    return Err(ProviderError::bad_credentials(
                        "the ID token's nonce does not match this login's (a replayed or foreign callback)",
                    ));
                }
                None => {
                    return Err(ProviderError::bad_credentials(
                        "the ID token carries no nonce although the login sent one",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Which claims hold what.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The e-mail claim (`emailKey`): a top-level name or a JSON pointer.
    pub email_key: String,
    /// The user-name claim (`preferredUsernameKey`): a top-level name or a JSON pointer.
    pub preferred_username_key: String,
    /// The groups claim (`groupsClaim`): a top-level name or a JSON pointer.
    pub groups_claim: String,
    /// Refuse an e-mail the provider has not verified (`requireEmailVerified`).
    pub require_email_verified: bool,
}

/// The claim at `key`: a top-level name, or a JSON pointer when it starts with `/`.
fn claim<'c>(claims: &'c Map<String, Value>, key: &str) -> Option<&'c Value> {
    let Some(pointer) = key.strip_prefix('/') else {
        return claims.get(key);
    };
    let mut parts = pointer
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"));
    let mut v = claims.get(&parts.next()?)?;
    for part in parts {
        v = match v {
            Value::Object(m) => m.get(&part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn claim_str(claims: &Map<String, Value>, key: &str) -> Option<String> {
    match claim(claims, key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl Mapping {
    /// The identity: user id = `sub`, username = the preferred-username claim (falling back to `name`), e-mail,
    /// `email_verified`, display name = `name`, groups from the groups claim (a list of strings or one string).
    pub fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, ProviderError> {
        let Some(sub) = claims.get("sub").and_then(Value::as_str) else {
            return Err(ProviderError::upstream(
                "the ID token has no string `sub` claim",
            ));
        };
        let verified = match claim(claims, "email_verified") {
            Some(Value::Bool(b)) => Some(*b),
            // Some providers (older Azure AD, Cognito) send the string form.
            Some(Value::String(s)) => s.parse::<bool>().ok(),
            _ => None,
        };
        let email = claim_str(claims, &self.email_key);
        if self.require_email_verified && email.is_some() && verified != Some(true) {
            return Err(ProviderError::bad_credentials(
                "the identity provider has not verified this user's e-mail address (requireEmailVerified is set)",
            ));
        }
        let username = claim_str(claims, &self.preferred_username_key)
            .or_else(|| claim_str(claims, "name"))
            .unwrap_or_default();
        let mut identity = Identity::new(sub)?
            .with_username(username)
            .with_email(email.unwrap_or_default())
            .with_display_name(claim_str(claims, "name").unwrap_or_default());
        if let Some(v) = verified {
            identity = identity.with_email_verified(v);
        }
        match claim(claims, &self.groups_claim) {
            Some(Value::Array(list)) => {
                for g in list.iter().filter_map(Value::as_str) {
                    identity = identity.with_group(g);
                }
            }
            Some(Value::String(g)) => identity = identity.with_group(g.clone()),
            _ => {}
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const NOW: u64 = 1_800_000_000;

    fn check() -> IdTokenCheck<'static> {
        IdTokenCheck {
            issuer: Some("https://op"),
            client_id: "ks",
            leeway: 10,
        }
    }

    fn good() -> Value {
        json!({"iss": "https://op", "aud": "ks", "sub": "alice", "exp": NOW + 60, "iat": NOW, "nonce": "n"})
    }

    #[test]
    fn accepts_a_good_token_and_skew_within_leeway() {
        assert!(check().check(&claims(good()), Some("n"), NOW).is_ok());
        let mut t = good();
        t["iat"] = json!(NOW + 8);
        t["exp"] = json!(NOW - 5);
        assert!(check().check(&claims(t), Some("n"), NOW).is_ok());
    }

    #[test]
    fn refuses_bad_claims() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"iss": "https://evil"}), "`iss`"),
            (json!({"aud": "other"}), "clientID"),
            (json!({"aud": ["ks", "other"]}), "`azp`"),
            (json!({"aud": ["ks", "other"], "azp": "other"}), "`azp`"),
            (json!({"exp": NOW - 11}), "expired"),
            (json!({"iat": NOW + 11}), "future"),
            (json!({"iat": null}), "no `iat`"),
            (json!({"nbf": NOW + 100}), "not valid before"),
        ];
        for (patch, needle) in cases {
            let mut t = good();
            for (k, v) in patch.as_object().unwrap() {
                t[k] = v.clone();
            }
            let e = check().check(&claims(t), Some("n"), NOW).unwrap_err();
            assert!(
                e.is_upstream() && e.to_string().contains(needle),
                "{needle}: {e}"
            );
        }
        let e = check()
            .check(&claims(good()), Some("other"), NOW)
            .unwrap_err();
        assert!(e.is_bad_credentials(), "{e}");
        let mut multi = good();
        multi["aud"] = json!(["ks", "x"]);
        multi["azp"] = json!("ks");
        assert!(check().check(&claims(multi), Some("n"), NOW).is_ok());
        let any_iss = IdTokenCheck {
            issuer: None,
            ..check()
        };
        let mut t = good();
        t["iss"] = json!("https://whatever");
        assert!(any_iss.check(&claims(t), Some("n"), NOW).is_ok());
    }

    #[test]
    fn mapping() {
        let m = Mapping {
            email_key: "mail".into(),
            preferred_username_key: "preferred_username".into(),
            groups_claim: "/realm_access/roles".into(),
            require_email_verified: false,
        };
        let id = m
            .identity(&claims(
                json!({"sub": "s1", "name": "Alice A", "mail": "a@x", "email_verified": "true",
                                    "realm_access": {"roles": ["dev", "ops"]}}),
            ))
            .unwrap();
        assert_eq!(id.user_id(), "s1");
        assert_eq!(
            id.username.as_deref(),
            Some("Alice A"),
            "falls back to name"
        );
        assert_eq!(id.email.as_deref(), Some("a@x"));
        assert_eq!(id.email_verified, Some(true));
        assert_eq!(id.groups, vec!["dev", "ops"]);
        let strict = Mapping {
            require_email_verified: true,
            ..m
        };
        let e = strict
            .identity(&claims(json!({"sub": "s", "mail": "a@x"})))
            .unwrap_err();
        assert!(e.is_bad_credentials(), "{e}");
        assert!(
            strict.identity(&claims(json!({"sub": "s"}))).is_ok(),
            "no e-mail, nothing to verify"
        );
        assert!(
            strict
                .identity(&claims(json!({"sub": 5})))
                .unwrap_err()
                .is_upstream()
        );
    }
}
