-- Portcullis schema, version 3 (SQLite): the OpenID Connect provider. Times are Unix milliseconds.

-- ID-token signing keys, shared by every replica. A key is generated once per (alg, generation):
-- the unique pair makes concurrent generation by several replicas race-safe (one insert wins,
-- the others read the winner). The private key is sealed (AES-256-GCM, key derived from
-- jwtSecret); the public JWK is stored in clear for the JWKS endpoint.
CREATE TABLE oidc_signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    alg          TEXT    NOT NULL,
    generation   INTEGER NOT NULL,
    private_key  TEXT    NOT NULL,
    public_jwk   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    UNIQUE (alg, generation)
) STRICT;

-- Authorization codes, stored by SHA-256 hash. Taken once (used_at set atomically); a later
-- presentation marks replayed_at so the session reserved for the code (session_id) is revoked.
CREATE TABLE oidc_codes (
    code_hash          TEXT    NOT NULL PRIMARY KEY,
    client_id          TEXT    NOT NULL,
    redirect_uri       TEXT    NOT NULL,
    redirect_uri_given INTEGER NOT NULL,
    code_challenge     TEXT,
    nonce              TEXT,
    scopes             TEXT    NOT NULL,
    user_name          TEXT    NOT NULL,
    auth_session       TEXT    NOT NULL,
    auth_time          INTEGER NOT NULL,
    session_id         TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER,
    replayed_at        INTEGER
) STRICT;
CREATE INDEX oidc_codes_expires_idx ON oidc_codes (expires_at);

-- What a session created by the code grant was granted: its scopes and when the user logged in.
-- Pruned once its session is gone.
CREATE TABLE oidc_grants (
    session_id   TEXT    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL,
    user_name    TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    auth_time    INTEGER NOT NULL,
    auth_session TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- Remembered consent (grantMethod: prompt): the scopes a user allowed a client.
CREATE TABLE oidc_consents (
    user_name  TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, client_id)
) STRICT;
