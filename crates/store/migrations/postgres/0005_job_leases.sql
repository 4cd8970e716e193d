-- Portcullis schema, version 4: leases for background jobs (retention, pruning), so that with
-- several replicas on one database each job runs on one replica at a time. A lease is taken
-- when it is free or expired, or renewed by its holder. Times are Unix milliseconds.
CREATE TABLE job_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
