-- Fills a Portcullis PostgreSQL database (schema created by the binary) with the scale
-- scenario's users, identity links and login records; the same data as seed-sqlite.sql (see
-- there). Expects a TEMP table `seed` (users, records, heavy, now_ms, span_ms) and the template
-- users bench0..bench3. Secondary indexes are dropped and rebuilt after the load.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
BEGIN;
DROP INDEX login_records_user_at_idx;
DROP INDEX login_records_at_idx;
DROP INDEX identity_links_user_idx;

CREATE TEMP TABLE hashes AS
  SELECT substr(name, 6)::int AS k, password_hash AS h FROM users WHERE name ~ '^bench[0-3]$';

INSERT INTO users (name, uid, email, email_key, display_name, groups, state, password_hash,
                   uninitialized, created_at, last_login_at, password_changed_at)
SELECT format('user%s', lpad(g::text, 7, '0')), gen_random_uuid()::text,
       format('user%s@example.com', lpad(g::text, 7, '0')), format('user%s@example.com', lpad(g::text, 7, '0')),
       format('User %s', g),
       CASE g % 10 WHEN 0 THEN '["devs","ops"]' WHEN 1 THEN '["ops"]' WHEN 2 THEN '[]' ELSE '["devs"]' END,
       CASE WHEN g % 1000 = 999 THEN 'Disabled' ELSE 'Active' END,
       h.h, false, s.now_ms - s.span_ms * 4, NULL, s.now_ms - s.span_ms * 4
FROM seed s, generate_series(0, s.users - 1) g JOIN hashes h ON h.k = g % 4;

INSERT INTO identity_links (provider, upstream_uid, user_name, upstream_username, upstream_email, created_at)
SELECT 'github', (10000000 + g)::text, format('user%s', lpad(g::text, 7, '0')), format('gh-user%s', lpad(g::text, 7, '0')),
       format('user%s@users.noreply.example.com', lpad(g::text, 7, '0')), s.now_ms - s.span_ms * 4
FROM seed s, generate_series(0, s.users - 1, 10) g;

INSERT INTO login_records (id, user_name, at, login_type, provider, source_ip, user_agent, success, reason)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 16, 3) || substr(r, 19, 18),
       format('user%s', lpad(u::text, 7, '0')), at,
       'Token', CASE WHEN u % 10 = 0 AND v % 3 = 0 THEN 'github' ELSE '' END,
       format('10.%s.%s.%s', u % 256, (u / 256) % 256, v % 250 + 1),
       CASE v % 3 WHEN 0 THEN 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
                  WHEN 1 THEN 'kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46'
                  ELSE 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15' END,
       v % 20 <> 7,
       CASE WHEN v % 20 <> 7 THEN 'authenticated successfully' ELSE 'incorrect username or password' END
FROM (
  SELECT v, gen_random_uuid()::text AS r, at, lpad(to_hex(at), 12, '0') AS t,
         CASE WHEN v % 100 = 0 THEN (v / 100) % s.heavy ELSE floor(random() * s.users)::bigint END AS u
  FROM seed s, generate_series(0::bigint, s.records - 1) v,
       LATERAL (SELECT s.now_ms - s.span_ms + v * s.span_ms / s.records AS at) a
) x;

CREATE INDEX login_records_user_at_idx ON login_records (user_name, at, id);
CREATE INDEX login_records_at_idx ON login_records (at);
CREATE INDEX identity_links_user_idx ON identity_links (user_name);
COMMIT;
ANALYZE users, identity_links, login_records;
