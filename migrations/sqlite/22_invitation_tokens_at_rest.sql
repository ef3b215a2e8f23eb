-- Provider sign-ins and recovery links started from an invitation page kept the page's URL, raw
-- invitation token included, in return_to. They now keep only the token's SHA-256 there (the
-- browser brings the token back). Rows written before this version lose the invitation page:
-- a flow lands on the home page instead, a recovery link on the page its confirmation names.
UPDATE oauth_flows SET return_to = '/' WHERE return_to LIKE '/auth/invitations/%';
UPDATE pending_provider_links SET return_to = NULL WHERE return_to LIKE '/auth/invitations/%';
