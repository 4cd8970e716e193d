-- Portcullis schema, version 2 (PostgreSQL): federated login. Times are Unix milliseconds (BIGINT).

-- One row per browser login in flight at an identity provider. The id is the OAuth `state` and
-- the value of the login-state cookie; a row is taken (deleted) exactly once by the callback.
CREATE TABLE login_states (
    id            TEXT   NOT NULL,
    provider      TEXT   NOT NULL,
    pkce_verifier TEXT,
    nonce         TEXT,
    return_to     TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    CONSTRAINT login_states_pkey PRIMARY KEY (id)
);
CREATE INDEX login_states_expires_idx ON login_states (expires_at);

-- A first login under `mappingMethod: manual` waiting for the user to choose a name. Consumed
-- (deleted) in the same transaction that creates the user and its link.
CREATE TABLE pending_registrations (
    id                TEXT   NOT NULL,
    provider          TEXT   NOT NULL,
    upstream_uid      TEXT   NOT NULL,
    upstream_username TEXT,
    upstream_email    TEXT,
    proposed_name     TEXT   NOT NULL,
    proposed_email    TEXT,
    csrf_token        TEXT   NOT NULL,
    return_to         TEXT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    CONSTRAINT pending_registrations_pkey PRIMARY KEY (id)
);
CREATE INDEX pending_registrations_expires_idx ON pending_registrations (expires_at);
