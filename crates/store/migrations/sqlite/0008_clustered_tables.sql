-- Portcullis schema, version 8 (SQLite): login records kept together per user, and lockout
-- counters stored in the order of their keys (WITHOUT ROWID).
--
-- Login records were stored in the order they were written, so a user's records lay one per page
-- over the whole table: the console's page of ten records read ten pages scattered through the
-- file, which on a large database (10,000,000 records) mostly missed SQLite's page cache. They are
-- now stored by (user_name, at, id), the order of that page: a user's records share a page or
-- two, and the index on (user_name, at, id) is the table itself. The retention job finds
-- expired records through the index on `at`; record ids stay unique through their own index.
--
-- Lockout counters had SQLite's hidden integer row id as their storage key and a separate index
-- on their text key, so every reservation changed two B-trees where one will do. (Sessions keep
-- theirs: stored by their random ids, each new session lands on a random page of full rows; with
-- sessions converted too, 15 s of client-credentials grants, about 90,000 sessions, were about
-- 10% slower in two alternating passes.)
--
-- The tables are copied in key order (a large login history takes a while, once, at the start
-- after the upgrade; see docs/deploy.md).

CREATE TABLE login_records_new (
    user_name  TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    id         TEXT    NOT NULL,
    login_type TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    source_ip  TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    success    INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    PRIMARY KEY (user_name, at, id)
) STRICT, WITHOUT ROWID;
INSERT INTO login_records_new (user_name, at, id, login_type, provider, source_ip, user_agent, success, reason)
SELECT user_name, at, id, login_type, provider, source_ip, user_agent, success, reason
FROM login_records ORDER BY user_name, at, id;
DROP TABLE login_records;
ALTER TABLE login_records_new RENAME TO login_records;
CREATE INDEX login_records_at_idx ON login_records (at);
CREATE UNIQUE INDEX login_records_id_idx ON login_records (id);

CREATE TABLE lockouts_new (
    lock_key     TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until INTEGER,
    expires_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO lockouts_new (lock_key, window_start, failures, locked_until, expires_at)
SELECT lock_key, window_start, failures, locked_until, expires_at FROM lockouts ORDER BY lock_key;
DROP TABLE lockouts;
ALTER TABLE lockouts_new RENAME TO lockouts;
CREATE INDEX lockouts_expires_idx ON lockouts (expires_at);
