-- Groups reported by the identity provider at login (issue 5): kept with the session so that
-- refreshed tokens carry them, and with a pending registration so that the confirmed first
-- login does. JSON arrays of strings, like users.groups.
ALTER TABLE sessions ADD COLUMN upstream_groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE pending_registrations ADD COLUMN upstream_groups TEXT NOT NULL DEFAULT '[]';
