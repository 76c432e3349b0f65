-- 0012 the alerts engine (alerts/): lifecycle columns, every action of schemas.alert.AlertAction,
-- the engine's committed high-water marks, the events it has already evaluated and the
-- per-terminal state its condition rules need (checkpointed, so a restart resumes, not restarts).

-- One condition on one subject: ``subject`` (terminal id, grid code, order id) and the
-- ``occurrence`` last counted (an event key or the start of a condition's episode), so that
-- re-evaluating the same thing never bumps twice. Defaults let other writers (orders/) insert
-- with only the columns of 0006.
ALTER TABLE alert
    ADD COLUMN count        integer     NOT NULL DEFAULT 1,
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN cleared_at   timestamptz,            -- the condition ended (the engine clears it)
    ADD COLUMN subject      text,
    ADD COLUMN occurrence   text;

-- The open-alert dedup index with a predicate that ``ON CONFLICT (dedup_key) WHERE state <> 'resolved'``
-- can infer (0006's extra ``dedup_key IS NOT NULL`` made that statement fail; NULL keys never
-- collide in a unique index anyway).
DROP INDEX alert_open_dedup;
CREATE UNIQUE INDEX alert_open_dedup ON alert (dedup_key) WHERE state <> 'resolved';
-- "was this episode already handled (and resolved by a person)?"
CREATE INDEX alert_dedup_occurrence ON alert (dedup_key, occurrence);
CREATE INDEX alert_open_kind ON alert (kind, subject) WHERE state <> 'resolved';

ALTER TABLE alert_action DROP CONSTRAINT alert_action_action_check;
ALTER TABLE alert_action ADD CONSTRAINT alert_action_action_check
    CHECK (action IN ('open', 'bump', 'acknowledge', 'resolve', 'clear', 'remind', 'note'));

-- The engine reads terminal events and status messages by arrival time.
CREATE INDEX terminal_event_received ON terminal_event (received_at);
CREATE INDEX terminal_status_received ON terminal_status (received_at);

-- Committed high-water marks: advanced in the same transaction as the alerts they produced.
CREATE TABLE alert_engine_mark (
    source      text PRIMARY KEY,          -- 'events', 'status'
    mark        timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events already evaluated (the overlap window re-reads some): inserted with the alerts.
CREATE TABLE alert_seen_event (
    terminal_id  text        NOT NULL,
    seq          bigint      NOT NULL,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (terminal_id, seq, ts)
);
CREATE INDEX alert_seen_event_received ON alert_seen_event (received_at);

-- What the condition rules know of each terminal (alerts.rules.TerminalState), checkpointed.
CREATE TABLE alert_terminal_state (
    terminal_id     text PRIMARY KEY,
    last_seen_at    timestamptz,
    last_fix_ts     timestamptz,
    lat             double precision,
    lon             double precision,
    grid2_code      text,
    battery_pct     real,
    battery_ts      timestamptz,
    battery_low_since timestamptz,
    outside_since   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
