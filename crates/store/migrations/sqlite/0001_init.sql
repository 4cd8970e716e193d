-- Portcullis schema, version 1 (SQLite). Times are Unix milliseconds.
-- STRICT tables make SQLite enforce column types as PostgreSQL does.

CREATE TABLE users (
    name                TEXT    NOT NULL PRIMARY KEY,
    uid                 TEXT    NOT NULL UNIQUE,
    email               TEXT,
    -- Lower-cased email, computed by Portcullis so that both backends agree on case folding.
    email_key           TEXT    UNIQUE,
    display_name        TEXT,
    -- JSON array of group names.
    groups              TEXT    NOT NULL DEFAULT '[]',
    state               TEXT    NOT NULL,
    password_hash       TEXT,
    uninitialized       INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    last_login_at       INTEGER,
    password_changed_at INTEGER
) STRICT;

CREATE TABLE identity_links (
    provider          TEXT    NOT NULL,
    upstream_uid      TEXT    NOT NULL,
    user_name         TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    upstream_username TEXT,
    upstream_email    TEXT,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (provider, upstream_uid)
) STRICT;
CREATE INDEX identity_links_user_idx ON identity_links (user_name);

-- No foreign key: a record keeps the name as typed when it did not resolve to a user.
CREATE TABLE login_records (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_name  TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    login_type TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    source_ip  TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    success    INTEGER NOT NULL,
    reason     TEXT    NOT NULL
) STRICT;
CREATE INDEX login_records_user_at_idx ON login_records (user_name, at, id);
CREATE INDEX login_records_at_idx ON login_records (at);

-- No foreign key: a session outlives its user as a revoked row.
CREATE TABLE sessions (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_name          TEXT    NOT NULL,
    client_id          TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    last_seen_at       INTEGER NOT NULL,
    refresh_generation INTEGER NOT NULL,
    revoked_at         INTEGER,
    source_ip          TEXT    NOT NULL,
    user_agent         TEXT    NOT NULL
) STRICT;
CREATE INDEX sessions_user_idx ON sessions (user_name);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- AUTOINCREMENT: a sequence number is never reused, even after the newest entries are pruned,
-- so a poller's cursor stays valid.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL,
    expires_at INTEGER
) STRICT;
CREATE INDEX revocations_expires_idx ON revocations (expires_at);

CREATE TABLE lockouts (
    lock_key     TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until INTEGER,
    -- When the row stops carrying information (window over and not locked); used for pruning.
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX lockouts_expires_idx ON lockouts (expires_at);
