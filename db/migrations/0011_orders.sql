-- 0011 emergency orders: the order, every command published for it (issue, amendments,
-- cancellation), each command's recipients (the outbox and the per-recipient tracking), and
-- an append-only audit trail. Owned by orders/ (the dispatcher publishes from what is
-- committed here); acks stored by ingest drive recipient states through a trigger, in the
-- same transaction that stores the ack.

CREATE TABLE emergency_order (
    order_id        uuid PRIMARY KEY,
    state           text        NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'cancelled', 'expired', 'closed')),
    revision        integer     NOT NULL DEFAULT 0,
    kind            text        NOT NULL,
    priority        text        NOT NULL,
    title           text        NOT NULL,
    body            text        NOT NULL DEFAULT '',
    lat             double precision,
    lon             double precision,
    place_radius_m  real,
    target          jsonb       NOT NULL,   -- the OrderTarget as asked (schemas/orders.py)
    created_by      text        NOT NULL,
    created_via     text        NOT NULL DEFAULT 'ui' CHECK (created_via IN ('ui', 'api')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    deadline        timestamptz,
    expires_at      timestamptz,
    ended_at        timestamptz
);
CREATE INDEX emergency_order_active ON emergency_order (created_at DESC) WHERE state = 'active';
CREATE INDEX emergency_order_created ON emergency_order (created_at DESC);

-- Every command published for an order. ``content`` holds the Command's fields except
-- command_id and ``to``: the dispatcher publishes exactly this, signed, to each recipient.
CREATE TABLE order_command (
    command_id  uuid PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES emergency_order (order_id),
    action      text        NOT NULL CHECK (action IN ('issue', 'amend', 'cancel')),
    revision    integer     NOT NULL,
    content     jsonb       NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_command_order ON order_command (order_id, created_at);

-- One row per command per recipient terminal: queued rows are the outbox.
CREATE TABLE order_recipient (
    command_id    uuid        NOT NULL REFERENCES order_command (command_id),
    terminal_id   text        NOT NULL,
    order_id      uuid        NOT NULL REFERENCES emergency_order (order_id),
    person_id     text,
    person_name   text,
    role          text,
    grid2_code    text,
    grid1_code    text,
    distance_m    real,
    state         text        NOT NULL DEFAULT 'queued' CHECK (state IN
                  ('queued', 'sent', 'received', 'accepted', 'done', 'rejected', 'expired', 'no_answer', 'cancelled')),
    state_at      timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0,
    last_sent_at  timestamptz,
    received_at   timestamptz,
    accepted_at   timestamptz,
    done_at       timestamptz,
    reason        text,
    arrived_at    timestamptz,
    -- the terminal had not been heard from within the online window at the last send: when it is
    -- heard from again while still silent, the dispatcher re-sends at once (it came back)
    offline_at_send boolean   NOT NULL DEFAULT false,
    PRIMARY KEY (command_id, terminal_id)
);
CREATE INDEX order_recipient_outbox ON order_recipient (command_id) WHERE state = 'queued';
CREATE INDEX order_recipient_waiting ON order_recipient (last_sent_at) WHERE state IN ('sent', 'no_answer');
CREATE INDEX order_recipient_order ON order_recipient (order_id, state);
CREATE INDEX order_recipient_terminal ON order_recipient (terminal_id, state);

-- Append-only: who did what to which order and recipient, when.
CREATE TABLE order_audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,      -- duty officer, API client, terminal id, or 'system'
    order_id     uuid        NOT NULL,
    command_id   uuid,
    terminal_id  text,
    action       text        NOT NULL,      -- create, amend, cancel, expire, close, sent, resend, no_answer, alert, state:<state>
    detail       jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX order_audit_order ON order_audit (order_id, id);

CREATE FUNCTION gw_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER order_audit_append_only BEFORE UPDATE OR DELETE ON order_audit
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
CREATE TRIGGER order_audit_no_truncate BEFORE TRUNCATE ON order_audit
    FOR EACH STATEMENT EXECUTE FUNCTION gw_append_only();

-- An ack moves its recipient forward only (received < accepted < done; rejected ends it);
-- final states (done, rejected, expired, cancelled) stay. A late ack lifts no_answer.
CREATE FUNCTION order_state_rank(state text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE state WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'no_answer' THEN 1
                      WHEN 'received' THEN 2 WHEN 'accepted' THEN 3 WHEN 'done' THEN 4 ELSE 9 END
$$;

CREATE FUNCTION order_apply_ack() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    oid uuid;
BEGIN
    UPDATE order_recipient r SET
        state       = NEW.status,
        state_at    = NEW.received_at,
        received_at = coalesce(r.received_at, NEW.ts),
        accepted_at = CASE WHEN NEW.status IN ('accepted', 'done') THEN coalesce(r.accepted_at, NEW.ts) ELSE r.accepted_at END,
        done_at     = CASE WHEN NEW.status = 'done' THEN NEW.ts ELSE r.done_at END,
        reason      = CASE WHEN NEW.status = 'rejected' THEN left(NEW.note, 2000) ELSE r.reason END
    WHERE r.command_id = NEW.command_id AND r.terminal_id = NEW.terminal_id
      AND r.state NOT IN ('done', 'rejected', 'expired', 'cancelled')
      AND (NEW.status = 'rejected' OR order_state_rank(r.state) < order_state_rank(NEW.status))
    RETURNING r.order_id INTO oid;
    IF oid IS NOT NULL THEN
        INSERT INTO order_audit (actor, order_id, command_id, terminal_id, action, detail)
        VALUES (NEW.terminal_id, oid, NEW.command_id, NEW.terminal_id, 'state:' || NEW.status,
                jsonb_build_object('ts', NEW.ts, 'note', NEW.note));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER command_ack_drives_orders AFTER INSERT ON command_ack
    FOR EACH ROW EXECUTE FUNCTION order_apply_ack();
