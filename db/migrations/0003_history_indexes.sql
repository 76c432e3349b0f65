-- Indexes shared by every mode. Designed for a year of fixes: every read names a terminal
-- or a grid and a bounded time window, and each has an index that starts with those.
CREATE UNIQUE INDEX gps_fix_once ON gps_fix (terminal_id, seq, ts);
CREATE INDEX gps_fix_terminal_ts ON gps_fix (terminal_id, ts DESC);
CREATE INDEX gps_fix_grid_ts ON gps_fix (grid2_code, ts DESC);

CREATE UNIQUE INDEX terminal_event_once ON terminal_event (terminal_id, seq, ts);
CREATE INDEX terminal_event_terminal_ts ON terminal_event (terminal_id, ts DESC);
CREATE INDEX terminal_event_kind_ts ON terminal_event (kind, ts DESC);
CREATE INDEX terminal_event_grid_ts ON terminal_event (grid2_code, ts DESC);

-- Acknowledgements of commands: one row per (command, terminal, status); small, plain table.
CREATE TABLE command_ack (
    command_id   uuid        NOT NULL,
    terminal_id  text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('received', 'accepted', 'done', 'rejected')),
    ts           timestamptz NOT NULL,
    note         text,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (command_id, terminal_id, status)
);
CREATE INDEX command_ack_terminal ON command_ack (terminal_id, ts DESC);

-- What terminals said on their status topic (connect, Last Will).
CREATE TABLE terminal_status (
    terminal_id  text        NOT NULL,
    ts           timestamptz NOT NULL,
    online       boolean     NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX terminal_status_terminal_ts ON terminal_status (terminal_id, received_at DESC);

-- Every message that could not be accepted, with the raw bytes and the reason.
CREATE TABLE dead_letter (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text        NOT NULL,
    payload      bytea       NOT NULL,
    reason       text        NOT NULL,
    detail       text
);
CREATE INDEX dead_letter_received ON dead_letter (received_at DESC);
