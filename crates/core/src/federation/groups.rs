//! Upstream groups: what an identity provider reports (OIDC `groups` claim, LDAP group search,
//! GitHub organisations and teams, a generic provider's groups pointer) becomes part of the
//! session's tokens and of TokenReview answers, after the provider entry's policy:
//!
//! * `allowedGroups`: when set, the person must be in at least one of them (compared exactly,
//!   before any prefix), or the login is refused before any user, link or registration exists.
//! * `groupsPrefix`: prepended to every group (`github:` makes `acme` into `github:acme`).
//! * Groups in Kubernetes' reserved `system:` namespace are never passed on: an upstream that
//!   could name `system:masters` would otherwise grant cluster-admin through TokenReview.

use portcullis_idp::Identity;

use super::{FederationError, ProviderEntry, Reason};

/// The identity with its groups filtered and prefixed, or the refusal when `allowedGroups`
/// is not met.
pub(crate) fn apply_group_policy(
    entry: &ProviderEntry,
    identity: &Identity,
) -> Result<Identity, FederationError> {
    let config = &entry.config;
    if !config.allowed_groups.is_empty()
        && !identity
            .groups
            .iter()
            .any(|g| config.allowed_groups.contains(g))
    {
        return Err(FederationError::Denied(Reason::NotInAllowedGroup {
            provider: entry.label().to_owned(),
        }));
    }
    let mut mapped = identity.clone();
    mapped.groups = Vec::with_capacity(identity.groups.len());
    for g in &identity.groups {
        let group = format!("{}{g}", config.groups_prefix);
        if group.starts_with("system:") {
            tracing::warn!(
                provider = entry.name(),
                group = %group,
                "an upstream group in the reserved system: namespace was dropped"
            );
            continue;
        }
        if !mapped.groups.contains(&group) {
            mapped.groups.push(group);
        }
    }
    Ok(mapped)
}
