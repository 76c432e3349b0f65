-- 0013 API tokens for the city's decision-command platform (dashboard/api.py, dashboard/tokens.py).
-- Only the SHA-256 of each token is kept: the token itself is printed once when it is made.
-- A revoked token stays (with revoked_at) so the audit's "api:<name>" keeps its meaning.

CREATE TABLE api_token (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        text        NOT NULL DEFAULT 'duty_officer' CHECK (role IN ('duty_officer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz
);
