-- Portcullis schema, version 1 (PostgreSQL). Times are Unix milliseconds (BIGINT).
-- Constraint names are part of the contract: the store maps them to precise conflict messages.

CREATE TABLE users (
    name                TEXT    NOT NULL,
    uid                 TEXT    NOT NULL,
    email               TEXT,
    -- Lower-cased email, computed by Portcullis so that both backends agree on case folding.
    email_key           TEXT,
    display_name        TEXT,
    -- JSON array of group names.
    groups              TEXT    NOT NULL DEFAULT '[]',
    state               TEXT    NOT NULL,
    password_hash       TEXT,
    uninitialized       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT  NOT NULL,
    last_login_at       BIGINT,
    password_changed_at BIGINT,
    CONSTRAINT users_pkey PRIMARY KEY (name),
    CONSTRAINT users_uid_unique UNIQUE (uid),
    CONSTRAINT users_email_unique UNIQUE (email_key)
);

CREATE TABLE identity_links (
    provider          TEXT   NOT NULL,
    upstream_uid      TEXT   NOT NULL,
    user_name         TEXT   NOT NULL,
    upstream_username TEXT,
    upstream_email    TEXT,
    created_at        BIGINT NOT NULL,
    CONSTRAINT identity_links_pkey PRIMARY KEY (provider, upstream_uid),
    CONSTRAINT identity_links_user_fkey FOREIGN KEY (user_name) REFERENCES users (name) ON DELETE CASCADE
);
CREATE INDEX identity_links_user_idx ON identity_links (user_name);

-- No foreign key: a record keeps the name as typed when it did not resolve to a user.
CREATE TABLE login_records (
    id         TEXT    NOT NULL,
    user_name  TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    login_type TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    source_ip  TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    success    BOOLEAN NOT NULL,
    reason     TEXT    NOT NULL,
    CONSTRAINT login_records_pkey PRIMARY KEY (id)
);
CREATE INDEX login_records_user_at_idx ON login_records (user_name, at, id);
CREATE INDEX login_records_at_idx ON login_records (at);

-- No foreign key: a session outlives its user as a revoked row.
CREATE TABLE sessions (
    id                 TEXT   NOT NULL,
    user_name          TEXT   NOT NULL,
    client_id          TEXT   NOT NULL,
    provider           TEXT   NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT,
    last_seen_at       BIGINT NOT NULL,
    refresh_generation BIGINT NOT NULL,
    revoked_at         BIGINT,
    source_ip          TEXT   NOT NULL,
    user_agent         TEXT   NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);
CREATE INDEX sessions_user_idx ON sessions (user_name);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Appends take `LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE` first, so sequence numbers
-- become visible in commit order and a poller reading `seq > cursor` never skips one.
CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    session_id TEXT   NOT NULL,
    expires_at BIGINT,
    CONSTRAINT revocations_pkey PRIMARY KEY (seq)
);
CREATE INDEX revocations_expires_idx ON revocations (expires_at);

CREATE TABLE lockouts (
    lock_key     TEXT   NOT NULL,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    locked_until BIGINT,
    -- When the row stops carrying information (window over and not locked); used for pruning.
    expires_at   BIGINT NOT NULL,
    CONSTRAINT lockouts_pkey PRIMARY KEY (lock_key)
);
CREATE INDEX lockouts_expires_idx ON lockouts (expires_at);
