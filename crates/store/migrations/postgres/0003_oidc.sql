-- Portcullis schema, version 3 (PostgreSQL): the OpenID Connect provider. Times are Unix
-- milliseconds (BIGINT).

-- ID-token signing keys, shared by every replica. A key is generated once per (alg, generation):
-- the unique pair makes concurrent generation by several replicas race-safe (one insert wins,
-- the others read the winner). The private key is sealed (AES-256-GCM, key derived from
-- jwtSecret); the public JWK is stored in clear for the JWKS endpoint.
CREATE TABLE oidc_signing_keys (
    kid          TEXT   NOT NULL,
    alg          TEXT   NOT NULL,
    generation   BIGINT NOT NULL,
    private_key  TEXT   NOT NULL,
    public_jwk   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    CONSTRAINT oidc_signing_keys_pkey PRIMARY KEY (kid),
    CONSTRAINT oidc_signing_keys_generation_unique UNIQUE (alg, generation)
);

-- Authorization codes, stored by SHA-256 hash. Taken once (used_at set atomically); a later
-- presentation marks replayed_at so the session reserved for the code (session_id) is revoked.
CREATE TABLE oidc_codes (
    code_hash          TEXT    NOT NULL,
    client_id          TEXT    NOT NULL,
    redirect_uri       TEXT    NOT NULL,
    redirect_uri_given BOOLEAN NOT NULL,
    code_challenge     TEXT,
    nonce              TEXT,
    scopes             TEXT    NOT NULL,
    user_name          TEXT    NOT NULL,
    auth_session       TEXT    NOT NULL,
    auth_time          BIGINT  NOT NULL,
    session_id         TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    used_at            BIGINT,
    replayed_at        BIGINT,
    CONSTRAINT oidc_codes_pkey PRIMARY KEY (code_hash)
);
CREATE INDEX oidc_codes_expires_idx ON oidc_codes (expires_at);

-- What a session created by the code grant was granted: its scopes and when the user logged in.
-- Pruned once its session is gone.
CREATE TABLE oidc_grants (
    session_id   TEXT   NOT NULL,
    client_id    TEXT   NOT NULL,
    user_name    TEXT   NOT NULL,
    scopes       TEXT   NOT NULL,
    auth_time    BIGINT NOT NULL,
    auth_session TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT oidc_grants_pkey PRIMARY KEY (session_id)
);

-- Remembered consent (grantMethod: prompt): the scopes a user allowed a client.
CREATE TABLE oidc_consents (
    user_name  TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    scopes     TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    CONSTRAINT oidc_consents_pkey PRIMARY KEY (user_name, client_id)
);
