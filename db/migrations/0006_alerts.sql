-- Alerts and their lifecycle: open -> acknowledged -> resolved. Written by the alerts
-- engine, acted on from the wall; every action is recorded with who and when.
CREATE TABLE alert (
    id               bigserial PRIMARY KEY,
    kind             text        NOT NULL,   -- offline, sos, outside_grid, serious_violation, complaint_surge, order_unacknowledged, task_overdue
    severity         text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state            text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    terminal_id      text,
    grid2_code       text,
    lat              double precision,
    lon              double precision,
    title            text        NOT NULL,
    detail           jsonb       NOT NULL DEFAULT '{}',
    dedup_key        text,                   -- one open alert per key (e.g. 'offline:T00001')
    opened_at        timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_by      text,
    last_reminded_at timestamptz
);
CREATE INDEX alert_open ON alert (opened_at DESC) WHERE state <> 'resolved';
CREATE UNIQUE INDEX alert_open_dedup ON alert (dedup_key) WHERE state <> 'resolved' AND dedup_key IS NOT NULL;

CREATE TABLE alert_action (
    id        bigserial PRIMARY KEY,
    alert_id  bigint      NOT NULL REFERENCES alert (id),
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text        NOT NULL,
    action    text        NOT NULL CHECK (action IN ('acknowledge', 'resolve', 'remind', 'note')),
    note      text
);
CREATE INDEX alert_action_alert ON alert_action (alert_id, at);
