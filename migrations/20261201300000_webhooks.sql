-- Webhooks: endpoints, one delivery per (endpoint, event), every attempt logged, and a gap-free
-- event sequence.
--
-- 1. Every outbox row gets an `event_id` (the id receivers dedupe by). The `seq` stamped by the
--    publisher becomes gap-free: it is taken from the one-row counter `outbox_counter` inside the
--    publisher's transaction instead of a sequence (a sequence keeps the numbers a rolled-back
--    round drew, which left holes a receiver could not tell from lost events).
-- 2. `webhook_fanout` is the fan-out cursor: the last `seq` turned into deliveries. One worker
--    at a time moves it (row lock, SKIP LOCKED), in the transaction that inserts the deliveries,
--    so each (endpoint, event) gets exactly one delivery row (also a unique index).
-- 3. A delivery is leased by a worker (`locked_until`) while its HTTP request runs; a worker
--    killed mid-delivery loses the lease and another sends the same event again.

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
    created_by            UUID,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    version               BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX webhook_endpoints_events_idx ON webhook_endpoints USING gin (events) WHERE active;

CREATE TABLE webhook_fanout (
    id        INT PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL
);
INSERT INTO webhook_fanout (id, last_seq)
SELECT 1, last_seq FROM outbox_counter;

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
    delivered_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_inflight_idx ON webhook_deliveries (endpoint_id, locked_until)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

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
