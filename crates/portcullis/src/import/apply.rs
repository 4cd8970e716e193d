//! Writing checked KubeSphere objects to the store, one object at a time: a user with its
//! identity links, or a login record. Each object ends in one [`Outcome`]. Conflicts with data
//! already in Portcullis (an email or identity held by another user) are looked for before
//! anything is written, and a user whose links cannot be written after all is removed again, so
//! an object is either imported whole or not at all. Database failures abort the import.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Result;
use portcullis_core::Engine;
use portcullis_core::password::{hash_password, verify_password};
use portcullis_store::{IdentityLink, LoginRecord, StoreError, User, UserState, UserUpdate};

use super::parse::{KsLoginRecord, KsUser, Password};

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New in Portcullis (or would be, in a dry run).
    Imported,
    /// Existed and was replaced from the export (`--overwrite`); the fields that changed.
    Updated(Vec<&'static str>),
    /// Already in Portcullis exactly as in the export.
    Unchanged,
    /// Deliberately left alone, with the reason.
    Skipped(String),
    /// Could not be imported, with the reason; nothing was written for it.
    Failed(String),
}

/// Imports objects into one engine's store.
pub struct Importer {
    /// The engine (its store, clock and revocation).
    pub engine: Arc<Engine>,
    /// Report only.
    pub dry_run: bool,
    /// Replace differing existing users.
    pub overwrite: bool,
}

/// A store conflict becomes the object's failure; anything else aborts the import.
fn conflict_or_abort<T>(r: Result<T, StoreError>) -> Result<Result<T, String>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(StoreError::Conflict(m)) | Err(StoreError::NotFound(m)) => Ok(Err(m)),
        Err(e) => Err(e.into()),
    }
}

impl Importer {
    /// Imports one user.
    pub async fn user(&self, u: &KsUser) -> Result<Outcome> {
        match self.engine.store().get_user(&u.name).await? {
            None => self.create(u).await,
            Some(existing) => self.reconcile(u, &existing).await,
        }
    }

    /// The first thing in Portcullis that another user holds and this one needs.
    async fn conflict(&self, u: &KsUser) -> Result<Option<String>> {
        let store = self.engine.store();
        if let Some(email) = &u.email
            && let Some(other) = store.get_user_by_email(email).await?
            && other.name != u.name
        {
            return Ok(Some(format!(
                "email {email:?} is already used by Portcullis user {:?}",
                other.name
            )));
        }
        for (provider, uid) in &u.links {
            if let Some(link) = store.find_identity(provider, uid).await?
                && link.user != u.name
            {
                return Ok(Some(format!(
                    "identity {provider}/{uid} is already linked to Portcullis user {:?}",
                    link.user
                )));
            }
        }
        Ok(None)
    }

    async fn hash(&self, u: &KsUser) -> Result<Option<String>> {
        Ok(match &u.password {
            Password::None => None,
            Password::Hash(h) => Some(h.clone()),
            Password::Plain(p) => Some(hash_password(p).await?),
        })
    }

    async fn create(&self, u: &KsUser) -> Result<Outcome> {
        if let Some(c) = self.conflict(u).await? {
            return Ok(Outcome::Failed(c));
        }
        if self.dry_run {
            return Ok(Outcome::Imported);
        }
        let store = self.engine.store();
        let now = self.engine.now_ms();
        let password_hash = self.hash(u).await?;
        let user = User {
            name: u.name.clone(),
            uid: u
                .uid
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            groups: u.groups.clone(),
            state: u.state,
            password_changed_at: password_hash
                .as_ref()
                .map(|_| u.password_changed_at.or(u.created_at).unwrap_or(now)),
            password_hash,
            uninitialized: u.uninitialized,
            created_at: u.created_at.unwrap_or(now),
            last_login_at: u.last_login_at,
        };
        if let Err(m) = conflict_or_abort(store.create_user(&user).await)? {
            return Ok(Outcome::Failed(m));
        }
        for (provider, uid) in &u.links {
            let link = IdentityLink {
                provider: provider.clone(),
                upstream_uid: uid.clone(),
                user: u.name.clone(),
                upstream_username: None,
                upstream_email: None,
                upstream_email_verified: false,
                created_at: now,
            };
            if let Err(e) = store.link_identity(&link).await {
                // Nothing half-written: the user goes again (its links with it).
                store.delete_user(&u.name).await?;
                return match e {
                    StoreError::Conflict(m) => Ok(Outcome::Failed(m)),
                    other => Err(other.into()),
                };
            }
        }
        Ok(Outcome::Imported)
    }

    async fn password_matches(&self, u: &KsUser, existing: &User) -> bool {
        match (&u.password, existing.password_hash.as_deref()) {
            // An export without a password never takes one away.
            (Password::None, _) => true,
            (Password::Hash(h), Some(have)) => h == have,
            (Password::Plain(p), Some(have)) => verify_password(p, Some(have)).await,
            (_, None) => false,
        }
    }

    /// The fields in which Portcullis' user differs from the export.
    async fn differences(&self, u: &KsUser, existing: &User) -> Result<Vec<&'static str>> {
        let mut diffs = Vec::new();
        if !self.password_matches(u, existing).await {
            diffs.push("password");
        }
        let lower = |e: &Option<String>| e.as_deref().map(str::to_lowercase);
        if lower(&existing.email) != lower(&u.email) {
            diffs.push("email");
        }
        if existing.display_name != u.display_name {
            diffs.push("display name");
        }
        if existing.groups != u.groups {
            diffs.push("groups");
        }
        if existing.state != u.state {
            diffs.push("state");
        }
        if existing.uninitialized != u.uninitialized {
            diffs.push("uninitialized");
        }
        let have = self.engine.store().list_identities(&u.name).await?;
        let linked =
            |p: &str, id: &str| have.iter().any(|l| l.provider == p && l.upstream_uid == id);
        if u.links.iter().any(|(p, id)| !linked(p, id)) {
            diffs.push("identity links");
        }
        Ok(diffs)
    }

    async fn reconcile(&self, u: &KsUser, existing: &User) -> Result<Outcome> {
        let diffs = self.differences(u, existing).await?;
        if diffs.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        if !self.overwrite {
            return Ok(Outcome::Skipped(format!(
                "already in Portcullis and differs in: {}; pass --overwrite to replace it with the export",
                diffs.join(", ")
            )));
        }
        if let Some(c) = self.conflict(u).await? {
            return Ok(Outcome::Failed(c));
        }
        if self.dry_run {
            return Ok(Outcome::Updated(diffs));
        }
        let store = self.engine.store();
        let now = self.engine.now_ms();
        let new_password = diffs.contains(&"password");
        if new_password && let Some(hash) = self.hash(u).await? {
            store
                .set_password(&u.name, &hash, u.password_changed_at.unwrap_or(now))
                .await?;
        }
        let update = UserUpdate {
            email: Some(u.email.clone()),
            display_name: Some(u.display_name.clone()),
            groups: Some(u.groups.clone()),
            state: Some(u.state),
            uninitialized: Some(u.uninitialized),
        };
        if let Err(m) = conflict_or_abort(store.update_user(&u.name, &update).await)? {
            return Ok(Outcome::Failed(m));
        }
        let have = store.list_identities(&u.name).await?;
        for (provider, uid) in &u.links {
            if have
                .iter()
                .any(|l| &l.provider == provider && &l.upstream_uid == uid)
            {
                continue;
            }
            let link = IdentityLink {
                provider: provider.clone(),
                upstream_uid: uid.clone(),
                user: u.name.clone(),
                upstream_username: None,
                upstream_email: None,
                upstream_email_verified: false,
                created_at: now,
            };
            if let Err(m) = conflict_or_abort(store.link_identity(&link).await)? {
                return Ok(Outcome::Failed(m));
            }
        }
        // A new password or a newly disabled account ends the sessions opened before.
        if new_password || (u.state == UserState::Disabled && existing.state != UserState::Disabled)
        {
            self.engine.revoke_user(&u.name).await?;
        }
        Ok(Outcome::Updated(diffs))
    }

    /// Imports one user's login records. `user_present` says whether the user is (or, in a dry
    /// run, would be) in Portcullis.
    pub async fn records(
        &self,
        user: &str,
        records: &[&KsLoginRecord],
        user_present: bool,
    ) -> Result<Vec<Outcome>> {
        if !user_present && self.engine.store().get_user(user).await?.is_none() {
            let why = format!("user {user:?} is not in Portcullis");
            return Ok(records
                .iter()
                .map(|_| Outcome::Skipped(why.clone()))
                .collect());
        }
        let (have, _) = self
            .engine
            .store()
            .list_login_records(user, 0, 100_000)
            .await?;
        let have: HashSet<String> = have.into_iter().map(|r| r.id).collect();
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            if have.contains(&r.id) {
                out.push(Outcome::Unchanged);
                continue;
            }
            if self.dry_run {
                out.push(Outcome::Imported);
                continue;
            }
            let record = LoginRecord {
                id: r.id.clone(),
                user: r.user.clone(),
                at: r.at,
                login_type: r.login_type.clone(),
                provider: r.provider.clone(),
                source_ip: r.source_ip.clone(),
                user_agent: r.user_agent.clone(),
                success: r.success,
                reason: r.reason.clone(),
            };
            out.push(
                match conflict_or_abort(self.engine.store().add_login_record(&record).await)? {
                    Ok(()) => Outcome::Imported,
                    Err(_) => Outcome::Unchanged,
                },
            );
        }
        Ok(out)
    }
}
