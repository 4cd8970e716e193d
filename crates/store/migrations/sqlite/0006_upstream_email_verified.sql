-- Whether the identity provider reported the link's upstream email as verified (OIDC
-- email_verified, GitHub's primary verified address, an operator's LDAP directory). ID tokens
-- and userinfo say email_verified: true only for a user email equal to such an address; an
-- address a person typed on the confirm page never counts. Existing links and registrations
-- are not known to be verified.
ALTER TABLE identity_links ADD COLUMN upstream_email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pending_registrations ADD COLUMN upstream_email_verified INTEGER NOT NULL DEFAULT 0;
