//! `portcullis user ...`: works directly on the server's store, so it takes the same
//! `--config`/`--database` as `serve`. Changes that end access are picked up by running servers
//! from the revocation log within a couple of seconds.

use std::io::{BufRead, IsTerminal};

use anyhow::{Result, bail};
use portcullis_core::{Engine, NewUser};
use serde_json::json;

use crate::cli::{CommonOpts, UserCommand};
use crate::providers::Wiring;
use crate::setup;

async fn engine(common: &CommonOpts, wiring: &Wiring) -> Result<std::sync::Arc<Engine>> {
    Ok(engine_and_config(common, wiring).await?.0)
}

async fn engine_and_config(
    common: &CommonOpts,
    wiring: &Wiring,
) -> Result<(std::sync::Arc<Engine>, portcullis_config::Config)> {
    let config = setup::load_config(common, None, &wiring.registry(common)?)?;
    setup::init_logging(config.portcullis.log_format);
    Ok((setup::open_engine(&config).await?, config))
}

/// Asks for a password twice on a terminal, or reads one line from standard input.
fn read_password(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let p = line.trim_end_matches(['\n', '\r']).to_string();
        if p.is_empty() {
            bail!("no password given: pass --password, or write it to standard input");
        }
        Ok(p)
    }
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}

fn user_json(u: &portcullis_store::User) -> serde_json::Value {
    json!({
        "name": u.name, "uid": u.uid, "email": u.email, "displayName": u.display_name,
        "groups": u.groups, "state": u.state.as_str(), "hasPassword": u.password_hash.is_some(),
        "uninitialized": u.uninitialized, "createdAt": time_text(Some(u.created_at)),
        "lastLoginAt": time_text(u.last_login_at), "passwordChangedAt": time_text(u.password_changed_at),
    })
}

/// Runs a `user` subcommand.
pub async fn run(cmd: UserCommand, wiring: &Wiring) -> Result<()> {
    match cmd {
        UserCommand::Add {
            common,
            name,
            password,
            no_password,
            email,
            display_name,
            groups,
            uninitialized,
        } => {
            let engine = engine(&common, wiring).await?;
            let password = match (password, no_password) {
                (Some(p), _) => Some(p),
                (None, true) => None,
                (None, false) => Some(read_password("Password: ")?),
            };
            let groups = groups
                .into_iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect();
            let user = engine
                .add_user(NewUser {
                    name,
                    email,
                    display_name,
                    groups,
                    password,
                    uninitialized,
                })
                .await?;
            println!("created user {:?}", user.name);
        }
        UserCommand::List { common, output } => {
            let engine = engine(&common, wiring).await?;
            let mut users = Vec::new();
            let mut offset = 0;
            loop {
                let page = engine.store().list_users(offset, 500).await?;
                let n = page.len() as i64;
                users.extend(page);
                if n < 500 {
                    break;
                }
                offset += n;
            }
            match output.as_str() {
                "json" => println!(
                    "{}",
                    serde_json::to_string_pretty(&users.iter().map(user_json).collect::<Vec<_>>())?
                ),
                "table" => {
                    println!(
                        "{:<24} {:<32} {:<18} {:<24} LAST LOGIN",
                        "NAME", "EMAIL", "STATE", "GROUPS"
                    );
                    for u in &users {
                        println!(
                            "{:<24} {:<32} {:<18} {:<24} {}",
                            u.name,
                            u.email.as_deref().unwrap_or("-"),
                            u.state.as_str(),
                            if u.groups.is_empty() {
                                "-".to_string()
                            } else {
                                u.groups.join(",")
                            },
                            time_text(u.last_login_at)
                        );
                    }
                }
                other => bail!("unknown output format {other:?}: use table or json"),
            }
        }
        UserCommand::Show {
            common,
            name,
            output,
        } => {
            let engine = engine(&common, wiring).await?;
            let d = engine.user_details(&name).await?;
            let mut v = user_json(&d.user);
            v["identities"] = json!(d.identities.iter().map(|l| json!({"provider": l.provider, "uid": l.upstream_uid, "username": l.upstream_username})).collect::<Vec<_>>());
            v["activeSessions"] = json!(d.active_sessions);
            v["lockedUntil"] = json!(d.locked_until.map(|t| time_text(Some(t))));
            match output.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&v)?),
                "table" => {
                    if let Some(map) = v.as_object() {
                        for (k, val) in map {
                            println!(
                                "{k:<18} {}",
                                match val {
                                    serde_json::Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                }
                            );
                        }
                    }
                }
                other => bail!("unknown output format {other:?}: use table or json"),
            }
        }
        UserCommand::Passwd {
            common,
            name,
            password,
        } => {
            let engine = engine(&common, wiring).await?;
            engine.get_user(&name).await?;
            let password = match password {
                Some(p) => p,
                None => read_password("New password: ")?,
            };
            let n = engine.set_user_password(&name, &password).await?;
            println!("password of {name:?} changed; {n} session(s) revoked");
        }
        UserCommand::Disable { common, name } => {
            let engine = engine(&common, wiring).await?;
            let n = engine.disable_user(&name).await?;
            println!("user {name:?} disabled; {n} session(s) revoked");
        }
        UserCommand::Enable { common, name } => {
            let engine = engine(&common, wiring).await?;
            engine.enable_user(&name).await?;
            println!("user {name:?} enabled");
        }
        UserCommand::Delete { common, name } => {
            let engine = engine(&common, wiring).await?;
            engine.delete_user(&name).await?;
            println!("user {name:?} deleted");
        }
        UserCommand::Link {
            common,
            name,
            provider,
            uid,
            username,
        } => {
            let (engine, config) = engine_and_config(&common, wiring).await?;
            let configured = config
                .authentication
                .oauth_options
                .identity_providers
                .iter()
                .any(|p| p.name == provider);
            if !configured {
                // Allowed on purpose: links can be prepared (or imported) before the provider
                // is configured, and the CLI may run without the server's configuration file.
                eprintln!(
                    "warning: no identity provider named {provider:?} is configured; the link \
                     takes effect once one is"
                );
            }
            engine
                .link_identity(&name, &provider, &uid, username.as_deref())
                .await?;
            println!("linked identity {provider}/{uid} to user {name:?}");
        }
        UserCommand::Unlink {
            common,
            name,
            provider,
            uid,
        } => {
            let engine = engine(&common, wiring).await?;
            engine.unlink_identity(&name, &provider, &uid).await?;
            println!("unlinked identity {provider}/{uid} from user {name:?}");
        }
    }
    Ok(())
}
