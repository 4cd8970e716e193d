-- Fills a Portcullis SQLite database (schema created by the binary) with the scale scenario's
-- users, identity links and login records, in one transaction. Expects a TEMP table `seed`
-- (users, records, heavy, now_ms, span_ms) and the template users bench0..bench3, whose
-- argon2id hashes are reused: user N has the password of bench(N % 4).
-- Secondary indexes are dropped and rebuilt after the load (a sort instead of random inserts);
-- the load runs with a rollback journal (no WAL copy of 3 GB), and the file is left in WAL mode.
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
DROP INDEX login_records_at_idx;
DROP INDEX login_records_id_idx;
DROP INDEX identity_links_user_idx;

CREATE TEMP TABLE hashes AS
  SELECT CAST(substr(name, 6) AS INTEGER) AS k, password_hash AS h FROM users WHERE name GLOB 'bench[0-3]';

INSERT INTO users (name, uid, email, email_key, display_name, groups, state, password_hash,
                   uninitialized, created_at, last_login_at, password_changed_at)
SELECT printf('user%07d', g.value),
       substr(r, 1, 8) || '-' || substr(r, 9, 4) || '-4' || substr(r, 14, 3) || '-8' || substr(r, 18, 3) || '-' || substr(r, 21, 12),
       printf('user%07d@example.com', g.value), printf('user%07d@example.com', g.value),
       printf('User %d', g.value),
       CASE g.value % 10 WHEN 0 THEN '["devs","ops"]' WHEN 1 THEN '["ops"]' WHEN 2 THEN '[]' ELSE '["devs"]' END,
       CASE WHEN g.value % 1000 = 999 THEN 'Disabled' ELSE 'Active' END,
       h.h, 0, s.now_ms - s.span_ms * 4, NULL, s.now_ms - s.span_ms * 4
FROM (SELECT value, lower(hex(randomblob(16))) AS r FROM generate_series(0, (SELECT users - 1 FROM seed))) g
JOIN seed s JOIN hashes h ON h.k = g.value % 4;

-- One user in ten has a GitHub identity.
INSERT INTO identity_links (provider, upstream_uid, user_name, upstream_username, upstream_email, created_at)
SELECT 'github', CAST(10000000 + value AS TEXT), printf('user%07d', value), printf('gh-user%07d', value),
       printf('user%07d@users.noreply.example.com', value), (SELECT now_ms - span_ms * 4 FROM seed)
FROM generate_series(0, (SELECT users - 1 FROM seed), 10);

-- Records over span_ms before now (the oldest ones are past the retention period), inserted in
-- the table's key order (user, time, id) so that they are appended. One record in 100 belongs to
-- one of `heavy` busy accounts (past loginHistoryMaximumEntries); the rest to a random user.
INSERT INTO login_records (id, user_name, at, login_type, provider, source_ip, user_agent, success, reason)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12),
       printf('user%07d', u), at,
       'Token', CASE WHEN u % 10 = 0 AND value % 3 = 0 THEN 'github' ELSE '' END,
       printf('10.%d.%d.%d', u % 256, (u / 256) % 256, value % 250 + 1),
       CASE value % 3 WHEN 0 THEN 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
                      WHEN 1 THEN 'kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46'
                      ELSE 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15' END,
       value % 20 <> 7,
       CASE WHEN value % 20 <> 7 THEN 'authenticated successfully' ELSE 'incorrect username or password' END
FROM (
  SELECT value, lower(hex(randomblob(9))) AS r, at, printf('%012x', at) AS t,
         CASE WHEN value % 100 = 0 THEN (value / 100) % s.heavy ELSE abs(random()) % s.users END AS u
  FROM (SELECT value, s.now_ms - s.span_ms + value * s.span_ms / s.records AS at
        FROM generate_series(0, (SELECT records - 1 FROM seed)) JOIN seed s) JOIN seed s
)
ORDER BY 2, 3, 1;

CREATE INDEX login_records_at_idx ON login_records (at);
CREATE UNIQUE INDEX login_records_id_idx ON login_records (id);
CREATE INDEX identity_links_user_idx ON identity_links (user_name);
COMMIT;
PRAGMA journal_mode = WAL;
