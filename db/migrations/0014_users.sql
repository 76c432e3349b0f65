-- 0014 Who may use the web: users with roles, wall tokens, server-side sessions, the web audit.
-- (dashboard/auth/: issue 15.) Passwords are argon2id hashes (argon2-cffi); wall tokens and
-- session ids are kept only as SHA-256, so a copy of the database signs nobody in.

CREATE TABLE web_user (
    name             text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    role             text        NOT NULL CHECK (role IN ('wall_viewer', 'duty_officer', 'administrator')),
    password_hash    text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    password_set_at  timestamptz NOT NULL DEFAULT now()
);

-- A wall display's read-only credential: /wall?token=... opens a wall session.
CREATE TABLE wall_token (
    name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    token_hash    bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);

-- One row per signed-in browser. Checked on every request: signing out deletes the row;
-- removing a user or wall token, or a new password, deletes its rows (cascade / explicit).
CREATE TABLE web_session (
    id_hash       bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    user_name     text REFERENCES web_user (name) ON DELETE CASCADE ON UPDATE CASCADE,
    wall_name     text REFERENCES wall_token (name) ON DELETE CASCADE,
    address       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_name IS NULL) <> (wall_name IS NULL))
);
CREATE INDEX web_session_user ON web_session (user_name);
CREATE INDEX web_session_wall ON web_session (wall_name);
CREATE INDEX web_session_seen ON web_session (last_seen_at);

-- Append-only: sign-ins, failures, sign-outs, user and wall-token changes (the web's own
-- record; order_audit and alert_action keep theirs, `python -m dashboard.audit` unions them).
CREATE TABLE web_audit (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,      -- the user, 'cli:<os user>', 'wall:<name>' or '-' (unknown)
    action   text        NOT NULL,      -- dashboard/auth/audit.py WebAction
    subject  text,                      -- the user or wall token acted on
    address  text,
    detail   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX web_audit_at ON web_audit (at);
CREATE INDEX web_audit_subject ON web_audit (subject, at);
CREATE TRIGGER web_audit_append_only BEFORE UPDATE OR DELETE ON web_audit
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
CREATE TRIGGER web_audit_no_truncate BEFORE TRUNCATE ON web_audit
    FOR EACH STATEMENT EXECUTE FUNCTION gw_append_only();

-- The export reads each audit by a bounded time window.
CREATE INDEX IF NOT EXISTS order_audit_at ON order_audit (at);
CREATE INDEX IF NOT EXISTS alert_action_at ON alert_action (at);
