//! User administration: what the CLI (and later the account pages) do to users. Every change
//! that must end access (disable, delete, password change) revokes the user's sessions in the
//! store, which every running server picks up from the revocation log within a second or two.

use portcullis_store::{User, UserState, UserUpdate};

use crate::engine::Engine;
use crate::error::CoreError;
use crate::names::{check_email, check_group, check_user_name};
use crate::password::{check_new_password, hash_password};

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Initial password; `None` for a user who logs in only through an identity provider.
    pub password: Option<String>,
    /// Must set a new password at first login (KubeSphere's `uninitialized`).
    pub uninitialized: bool,
}

/// A user with what an operator wants to see about it.
#[derive(Debug, Clone)]
pub struct UserDetails {
    /// The user.
    pub user: User,
    /// Linked identities.
    pub identities: Vec<portcullis_store::IdentityLink>,
    /// When locked by too many failed logins, until when.
    pub locked_until: Option<i64>,
    /// Number of live sessions.
    pub active_sessions: usize,
}

fn validate_groups(groups: &[String]) -> Result<(), CoreError> {
    for g in groups {
        check_group(g).map_err(CoreError::Invalid)?;
    }
    Ok(())
}

impl Engine {
    /// Creates a user after validating every field.
    pub async fn add_user(&self, new: NewUser) -> Result<User, CoreError> {
        check_user_name(&new.name).map_err(|p| CoreError::Invalid(p.to_string()))?;
        if let Some(e) = &new.email {
            check_email(e).map_err(CoreError::Invalid)?;
        }
        validate_groups(&new.groups)?;
        let password_hash = match &new.password {
            Some(p) => {
                check_new_password(p).map_err(|p| CoreError::Invalid(p.to_string()))?;
                Some(hash_password(p).await?)
            }
            None => None,
        };
        let now = self.now_ms();
        let user = User {
            name: new.name,
            uid: uuid::Uuid::new_v4().to_string(),
            email: new.email,
            display_name: new.display_name.filter(|s| !s.is_empty()),
            groups: new.groups,
            state: UserState::Active,
            password_changed_at: password_hash.as_ref().map(|_| now),
            password_hash,
            uninitialized: new.uninitialized,
            created_at: now,
            last_login_at: None,
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    /// A user by name, or a NotFound error that names it.
    pub async fn get_user(&self, name: &str) -> Result<User, CoreError> {
        self.store
            .get_user(name)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("user {name:?} does not exist")))
    }

    /// Everything about a user.
    pub async fn user_details(&self, name: &str) -> Result<UserDetails, CoreError> {
        let user = self.get_user(name).await?;
        let now = self.now_ms();
        let identities = self.store.list_identities(name).await?;
        let locked_until = self
            .store
            .lockout_status(&format!("user:{name}"), now)
            .await?;
        let active_sessions = self.store.list_active_sessions(name, now).await?.len();
        Ok(UserDetails {
            user,
            identities,
            locked_until,
            active_sessions,
        })
    }

    /// Sets a new password and revokes all the user's sessions.
    pub async fn set_user_password(&self, name: &str, password: &str) -> Result<usize, CoreError> {
        check_new_password(password).map_err(|p| CoreError::Invalid(p.to_string()))?;
        self.get_user(name).await?;
        let hash = hash_password(password).await?;
        self.store.set_password(name, &hash, self.now_ms()).await?;
        self.revoke_user(name).await
    }

    /// Disables a user (refused on every path) and revokes all its sessions.
    pub async fn disable_user(&self, name: &str) -> Result<usize, CoreError> {
        self.store
            .update_user(
                name,
                &UserUpdate {
                    state: Some(UserState::Disabled),
                    ..Default::default()
                },
            )
            .await?;
        self.revoke_user(name).await
    }

    /// Enables a user and clears any lockout.
    pub async fn enable_user(&self, name: &str) -> Result<(), CoreError> {
        self.store
            .update_user(
                name,
                &UserUpdate {
                    state: Some(UserState::Active),
                    ..Default::default()
                },
            )
            .await?;
        self.store.lockout_clear(&format!("user:{name}")).await?;
        Ok(())
    }

    /// Changes profile fields.
    pub async fn update_user(&self, name: &str, update: UserUpdate) -> Result<User, CoreError> {
        if let Some(Some(e)) = &update.email {
            check_email(e).map_err(CoreError::Invalid)?;
        }
        if let Some(g) = &update.groups {
            validate_groups(g)?;
        }
        Ok(self.store.update_user(name, &update).await?)
    }

    /// Revokes the user's sessions, then deletes the user with its links and login records.
    pub async fn delete_user(&self, name: &str) -> Result<(), CoreError> {
        self.get_user(name).await?;
        self.revoke_user(name).await?;
        if !self.store.delete_user(name).await? {
            return Err(CoreError::NotFound(format!("user {name:?} does not exist")));
        }
        self.store.lockout_clear(&format!("user:{name}")).await?;
        Ok(())
    }
}
