//! Property test of the token and session life cycle against a small model.
//!
//! Random sequences of operations (log in, refresh, log out, let time pass) drive the real engine on a SQLite
//! store with the injected clock, under random settings (`multipleLogin`, `accessTokenMaxAge`,
//! `accessTokenInactivityTimeout`). After every operation every token ever issued is verified and the answer
//! must be exactly what the model predicts: valid, expired, revoked or inactive.
//!
//! The model in brief: a session is revoked by logout, by `multipleLogin: false` when its user logs in again,
//! and by the reuse of an already-used refresh token (rotation); a session is idle once unused for longer than
//! the inactivity timeout, and a verified token counts as a use; an access token expires `accessTokenMaxAge`
//! after it was issued (whole seconds, as in the JWT), a refresh token `accessTokenMaxAge` plus the inactivity
//! timeout after.

use std::sync::Arc;

use portcullis_config::LoadOptions;
use portcullis_core::{Engine, ManualClock, NewUser, RequestContext, TokenError, TokenType};
use portcullis_store::User;
use proptest::prelude::*;
use proptest::sample::Index;

const T0: i64 = 1_800_000_000_000;
const USERS: [&str; 2] = ["ann", "bob"];

#[derive(Debug, Clone)]
struct Settings {
    multiple_login: bool,
    max_age_ms: i64,
    inactivity_ms: i64,
}

#[derive(Debug, Clone)]
enum Op {
    Login(usize),
    Refresh(Index),
    Logout(Index),
    Advance(i64),
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        any::<bool>(),
        prop::sample::select(vec![600_000_i64, 7_200_000]),
        prop::sample::select(vec![0_i64, 300_000, 1_800_000]),
    )
        .prop_map(|(multiple_login, max_age_ms, inactivity_ms)| Settings {
            multiple_login,
            max_age_ms,
            inactivity_ms,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..USERS.len()).prop_map(Op::Login),
        3 => any::<Index>().prop_map(Op::Refresh),
        1 => any::<Index>().prop_map(Op::Logout),
        // Small steps, the interesting boundaries (inactivity 5 min and 30 min, max age 10 min and 2 h, each
        // to the millisecond) and anything up to 3 h.
        3 => prop_oneof![
            1_i64..2_000,
            prop::sample::select(vec![
                299_999_i64, 300_000, 300_001, 599_999, 600_000, 600_001, 1_800_000, 1_800_001,
                7_200_000,
            ]),
            0_i64..10_800_000,
        ]
        .prop_map(Op::Advance),
    ]
}

/// A session as the model sees it.
#[derive(Debug)]
struct ModelSession {
    user: usize,
    revoked: bool,
    last_used_ms: i64,
    generation: i64,
}

/// A token as the model sees it.
#[derive(Debug)]
struct ModelToken {
    text: String,
    kind: TokenType,
    session: usize,
    /// `exp`, Unix seconds.
    exp_s: i64,
    /// For refresh tokens, the generation it carries.
    generation: i64,
}

struct Model {
    settings: Settings,
    now_ms: i64,
    sessions: Vec<ModelSession>,
    tokens: Vec<ModelToken>,
}

impl Model {
    /// What verifying `token` answers now, and the use it records.
    fn verify(&mut self, token: usize) -> Result<(), TokenError> {
        let t = &self.tokens[token];
        if self.now_ms.div_euclid(1000) >= t.exp_s {
            return Err(TokenError::Expired);
        }
        let now = self.now_ms;
        let timeout = self.settings.inactivity_ms;
        let s = &mut self.sessions[t.session];
        if s.revoked {
            return Err(TokenError::Revoked);
        }
        if timeout > 0 {
            if now - s.last_used_ms > timeout {
                return Err(TokenError::Inactive);
            }
            s.last_used_ms = now;
        }
        Ok(())
    }

    /// Records a token pair issued now for `session` with refresh generation `generation`.
    fn issue(&mut self, session: usize, generation: i64, access: String, refresh: String) {
        let iat_s = self.now_ms.div_euclid(1000);
        let (max_age, inactivity) = (self.settings.max_age_ms, self.settings.inactivity_ms);
        self.tokens.push(ModelToken {
            text: access,
            kind: TokenType::AccessToken,
            session,
            exp_s: iat_s + max_age / 1000,
            generation,
        });
        self.tokens.push(ModelToken {
            text: refresh,
            kind: TokenType::RefreshToken,
            session,
            exp_s: iat_s + (max_age + inactivity) / 1000,
            generation,
        });
    }

    /// Whether the refresh grant with `token` succeeds; applies what it does to the sessions.
    fn refresh(&mut self, token: usize) -> bool {
        let t = &self.tokens[token];
        if t.kind != TokenType::RefreshToken || self.now_ms.div_euclid(1000) >= t.exp_s {
            return false;
        }
        let (session, generation) = (t.session, t.generation);
        let now = self.now_ms;
        let timeout = self.settings.inactivity_ms;
        let s = &mut self.sessions[session];
        if s.revoked {
            return false;
        }
        if timeout > 0 {
            if now - s.last_used_ms > timeout {
                return false;
            }
            s.last_used_ms = now;
        }
        if generation != s.generation {
            // Reuse of a rotated refresh token: the whole session goes.
            s.revoked = true;
            return false;
        }
        s.generation += 1;
        true
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        ip: "192.0.2.7".into(),
        user_agent: "proptest".into(),
    }
}

async fn engine(s: &Settings) -> (Arc<Engine>, ManualClock, Vec<User>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis_store::open(&format!("sqlite://{}/p.db", dir.path().display()))
        .await
        .unwrap();
    let yaml = format!(
        "authentication:\n  jwtSecret: s3cret\n  multipleLogin: {}\n  oauthOptions:\n    accessTokenMaxAge: {}ms\n    accessTokenInactivityTimeout: {}ms\n",
        s.multiple_login, s.max_age_ms, s.inactivity_ms
    );
    let config = portcullis_config::load_str(&yaml, None, &LoadOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    let engine = Engine::new(&config, store, Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut users = Vec::new();
    for name in USERS {
        // No password: sessions are issued directly, so no password hashing slows the cases down.
        users.push(
            engine
                .add_user(NewUser {
                    name: name.into(),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
    }
    (engine, clock, users, dir)
}

async fn run(settings: Settings, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (engine, clock, users, _dir) = engine(&settings).await;
    let mut model = Model {
        settings,
        now_ms: T0,
        sessions: Vec::new(),
        tokens: Vec::new(),
    };
    let mut engine_sessions: Vec<String> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Login(u) => {
                let issued = engine
                    .issue_session(&users[*u], "", "", &ctx())
                    .await
                    .unwrap();
                if !model.settings.multiple_login {
                    for s in model.sessions.iter_mut().filter(|s| s.user == *u) {
                        s.revoked = true;
                    }
                }
                model.sessions.push(ModelSession {
                    user: *u,
                    revoked: false,
                    last_used_ms: model.now_ms,
                    generation: 0,
                });
                engine_sessions.push(issued.session_id);
                let session = model.sessions.len() - 1;
                model.issue(session, 0, issued.access_token, issued.refresh_token);
            }
            Op::Refresh(i) if !model.tokens.is_empty() => {
                let i = i.index(model.tokens.len());
                let text = model.tokens[i].text.clone();
                let session = model.tokens[i].session;
                let got = engine.refresh(&text, None).await.map(|r| r.tokens);
                let want = model.refresh(i);
                prop_assert_eq!(
                    got.is_ok(),
                    want,
                    "step {}: refresh with token {} answered {:?}",
                    step,
                    i,
                    got.as_ref().map(|_| ()).map_err(|e| e.to_string())
                );
                if let Ok(issued) = got {
                    prop_assert_eq!(&issued.session_id, &engine_sessions[session]);
                    let generation = model.sessions[session].generation;
                    model.issue(
                        session,
                        generation,
                        issued.access_token,
                        issued.refresh_token,
                    );
                }
            }
            Op::Logout(i) if !model.tokens.is_empty() => {
                let i = i.index(model.tokens.len());
                let revoked = engine.logout(&model.tokens[i].text).await.unwrap();
                let valid = model.verify(i).is_ok();
                let session = model.tokens[i].session;
                prop_assert_eq!(revoked, valid, "step {}: logout with token {}", step, i);
                if valid {
                    model.sessions[session].revoked = true;
                }
            }
            Op::Advance(ms) => {
                clock.advance_ms(*ms);
                model.now_ms += ms;
            }
            Op::Refresh(_) | Op::Logout(_) => {}
        }
        for i in 0..model.tokens.len() {
            let (text, kind) = (model.tokens[i].text.clone(), model.tokens[i].kind);
            let got = engine.verify(&text, kind).await.map(|_| ());
            let want = model.verify(i);
            prop_assert_eq!(
                got,
                want,
                "step {} ({:?}): token {} ({:?} of session {})",
                step,
                op,
                i,
                kind,
                model.tokens[i].session
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn token_and_session_life_cycle_matches_the_model(
        settings in settings(),
        ops in prop::collection::vec(op(), 1..=30),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(settings, ops))?;
    }
}
