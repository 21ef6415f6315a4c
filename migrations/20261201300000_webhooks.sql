-- Webhooks: endpoints, one delivery per (endpoint, event), every attempt logged, and a gap-free
-- event sequence.
--
-- 1. Every outbox row gets an `event_id` (the id receivers dedupe by). The `seq` stamped by the
--    publisher becomes gap-free: it is taken from the one-row counter `outbox_counter` inside the
--    publisher's transaction instead of a sequence (a sequence keeps the numbers a rolled-back
--    round drew, which left holes a receiver could not tell from lost events).
-- 2. Each endpoint keeps a cursor (`cursor_seq`, the last event it was sent). A worker leases the
--    endpoint (`lease_until`), reads the events after its cursor, sends those it subscribed to,
--    and in one statement records them (one `webhook_deliveries` row each, written in its final
--    state) and moves the cursor. A worker killed mid-batch loses the lease; the next one starts
--    from the same cursor and sends the same events again (same id, same body).
-- 3. A failed first attempt leaves its delivery `pending` with `next_attempt_at`; retries lease
--    single deliveries (`locked_until`). Only pending rows are in the partial indexes, so the
--    happy path writes one row and touches two indexes.

ALTER TABLE outbox ADD COLUMN event_id UUID NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX outbox_event_id_key ON outbox (event_id);

CREATE TABLE outbox_counter (
    id        INT PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL
);
INSERT INTO outbox_counter (id, last_seq)
SELECT 1, COALESCE((SELECT max(seq) FROM outbox), 0);

CREATE TABLE webhook_endpoints (
    id                    UUID PRIMARY KEY,
    url                   TEXT NOT NULL,
    events                TEXT[] NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    active                BOOLEAN NOT NULL DEFAULT true,
    disabled_reason       TEXT,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_valid_until  TIMESTAMPTZ,
    consecutive_failures  INT NOT NULL DEFAULT 0,
    cursor_seq            BIGINT NOT NULL,
    lease_until           TIMESTAMPTZ,
    lease_owner           TEXT,
    created_by            UUID,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    version               BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE webhook_deliveries (
    id                UUID PRIMARY KEY,
    endpoint_id       UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq         BIGINT NOT NULL,
    event_id          UUID NOT NULL,
    event_type        TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          INT NOT NULL DEFAULT 0,
    max_attempts      INT NOT NULL,
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until      TIMESTAMPTZ,
    locked_by         TEXT,
    last_status_code  INT,
    last_error        TEXT,
    -- The last attempt's duration and the start of its answer (a first-try success has no
    -- row in webhook_attempts: this is its record).
    last_duration_ms  INT,
    last_excerpt      TEXT,
    delivered_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_inflight_idx ON webhook_deliveries (endpoint_id, locked_until)
    WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id       UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           INT NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    duration_ms       INT NOT NULL,
    status_code       INT,
    error             TEXT,
    response_excerpt  TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
