-- Register shifts (cash drawer sessions).
--
-- 1. `registers`: a till's cash drawer. `location_id` stays NULL until locations exist (their
--    migration adds the table and the foreign key).
-- 2. `shifts`: one drawer session. At most one open shift per register (a unique partial index)
--    and at most one open shift per user (`shift_users.on_shift`, unique per user while true):
--    decided by PostgreSQL, so two requests on two instances cannot both win.
-- 3. Money lands in a shift under a lock on its row: an order, payment or refund takes the shift
--    `FOR SHARE` and checks `status = 'open'`; closing takes it `FOR UPDATE`. A close therefore
--    waits for every write already attached to the shift and then sees all of it, and a write
--    that waited for a close re-reads the row, finds it closed and does not land there. The Z
--    report is computed in the closing transaction, after the lock, and stored with the shift.
-- 4. Orders, payments and refunds gain `shift_id` (orders also `register_id`); refunds gain a
--    tender `method` (backfilled from each order's first payment).
-- 5. `till_place_order(args jsonb)` attaches a POS order to its register and open shift.

CREATE TABLE registers (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Locations do not exist yet: NULL for now; their migration adds the foreign key.
    location_id  UUID,
    active       BOOLEAN NOT NULL DEFAULT true,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX registers_name_key ON registers (lower(name));

CREATE SEQUENCE shift_number_seq;

CREATE TABLE shifts (
    id                        UUID PRIMARY KEY,
    number                    BIGINT NOT NULL DEFAULT nextval('shift_number_seq'),
    register_id               UUID NOT NULL REFERENCES registers (id),
    status                    TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_by                 UUID NOT NULL REFERENCES users (id),
    opened_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_by                 UUID REFERENCES users (id),
    closed_at                 TIMESTAMPTZ,
    opening_float_cents       BIGINT NOT NULL CHECK (opening_float_cents >= 0),
    -- The previous shift's counted − deposit on this register; NULL for a register's first.
    expected_opening_cents    BIGINT,
    opening_difference_cents  BIGINT,
    paid_in_cents             BIGINT NOT NULL DEFAULT 0 CHECK (paid_in_cents >= 0),
    paid_out_cents            BIGINT NOT NULL DEFAULT 0 CHECK (paid_out_cents >= 0),
    -- Set when the shift closes, never after.
    expected_cash_cents       BIGINT,
    counted_cash_cents        BIGINT CHECK (counted_cash_cents >= 0),
    deposit_cents             BIGINT CHECK (deposit_cents >= 0),
    difference_cents          BIGINT,
    note                      TEXT,
    close_note                TEXT,
    -- The Z report as computed by the close, read back unchanged.
    z_report                  JSONB,
    version                   BIGINT NOT NULL DEFAULT 1,
    CONSTRAINT shifts_number_key UNIQUE (number),
    CONSTRAINT shifts_closed_check CHECK (
        (status = 'open' AND closed_at IS NULL AND z_report IS NULL)
        OR (status = 'closed' AND closed_at IS NOT NULL AND counted_cash_cents IS NOT NULL
            AND z_report IS NOT NULL))
);
CREATE UNIQUE INDEX shifts_one_open_per_register ON shifts (register_id) WHERE status = 'open';
CREATE INDEX shifts_register_idx ON shifts (register_id, closed_at DESC);
CREATE INDEX shifts_opened_idx ON shifts (opened_at DESC, id DESC);
CREATE INDEX shifts_opened_by_idx ON shifts (opened_by, opened_at DESC);

-- Who is on a shift. `on_shift` is true while the shift is open (the close clears it), so the
-- partial unique index keeps each user on at most one open shift.
CREATE TABLE shift_users (
    shift_id   UUID NOT NULL REFERENCES shifts (id),
    user_id    UUID NOT NULL REFERENCES users (id),
    on_shift   BOOLEAN NOT NULL DEFAULT true,
    joined_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shift_id, user_id)
);
CREATE UNIQUE INDEX shift_users_one_open_per_user ON shift_users (user_id) WHERE on_shift;

CREATE TABLE shift_cash_movements (
    id            UUID PRIMARY KEY,
    shift_id      UUID NOT NULL REFERENCES shifts (id),
    type          TEXT NOT NULL CHECK (type IN ('paid_in', 'paid_out')),
    amount_cents  BIGINT NOT NULL CHECK (amount_cents > 0),
    reason        TEXT NOT NULL,
    created_by    UUID REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX shift_cash_movements_shift_idx ON shift_cash_movements (shift_id, created_at);

-- Every existing row is NULL, so there is nothing to validate: NOT VALID skips a scan of the
-- big tables under lock (new rows are checked all the same).
ALTER TABLE orders ADD COLUMN register_id UUID,
                   ADD COLUMN shift_id UUID;
ALTER TABLE orders ADD CONSTRAINT orders_register_id_fkey
    FOREIGN KEY (register_id) REFERENCES registers (id) NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_shift_id_fkey
    FOREIGN KEY (shift_id) REFERENCES shifts (id) NOT VALID;
ALTER TABLE payments ADD COLUMN shift_id UUID;
ALTER TABLE payments ADD CONSTRAINT payments_shift_id_fkey
    FOREIGN KEY (shift_id) REFERENCES shifts (id) NOT VALID;
ALTER TABLE refunds ADD COLUMN shift_id UUID,
                    ADD COLUMN method TEXT;
ALTER TABLE refunds ADD CONSTRAINT refunds_shift_id_fkey
    FOREIGN KEY (shift_id) REFERENCES shifts (id) NOT VALID;
ALTER TABLE refunds ADD CONSTRAINT refunds_method_check
    CHECK (method IN ('cash', 'card', 'other'));
UPDATE refunds r SET method = (SELECT p.method FROM payments p WHERE p.order_id = r.order_id
                               ORDER BY p.created_at, p.id LIMIT 1)
WHERE r.method IS NULL;
-- refunds is small: its index is built here. orders and payments get theirs CONCURRENTLY in
-- the next migrations.
CREATE INDEX refunds_shift_idx ON refunds (shift_id) WHERE shift_id IS NOT NULL;

-- Same as migrations/20261130200000_payment_intents.sql, plus the register and shift of a POS
-- order (marked "Register shifts" below).
CREATE OR REPLACE FUNCTION till_place_order(args jsonb) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_order orders := jsonb_populate_record(NULL::orders, args -> 'order');
    v_key idempotency_keys := jsonb_populate_record(NULL::idempotency_keys, args -> 'idempotency');
    v_cap int := (args ->> 'open_orders_cap')::int;
    v_open bigint;
    v_take_ids uuid[];
    v_take_qty bigint[];
    v_take_mv uuid[];
    v_short json;
BEGIN
    SELECT coalesce(array_agg(t.product_id ORDER BY t.n), '{}'),
           coalesce(array_agg(t.quantity ORDER BY t.n), '{}'),
           coalesce(array_agg(t.movement_id ORDER BY t.n), '{}')
    INTO v_take_ids, v_take_qty, v_take_mv
    FROM ROWS FROM (jsonb_to_recordset(args -> 'takes')
                    AS (movement_id uuid, product_id uuid, quantity bigint))
         WITH ORDINALITY AS t(movement_id, product_id, quantity, n);
    IF NOT pg_try_advisory_xact_lock(till_idempotency_lock_id(v_key.scope, v_key.key)) THEN
        RAISE EXCEPTION 'idempotency key in use' USING ERRCODE = 'TL409';
    END IF;
    -- The open-orders cap: one customer's orders are counted one request at a time.
    IF v_cap IS NOT NULL AND v_order.customer_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('till.open_orders' || chr(31)
                                                       || v_order.customer_id::text, 0));
        SELECT count(*) INTO v_open FROM orders
        WHERE customer_id = v_order.customer_id AND status = 'pending'
          AND channel = 'online' AND paid_cents < total_cents;
        IF v_open >= v_cap THEN
            RAISE EXCEPTION 'open orders cap' USING ERRCODE = 'TL429';
        END IF;
    END IF;
    PERFORM 1 FROM products
    WHERE id = ANY (v_take_ids) AND track_stock ORDER BY id FOR NO KEY UPDATE;
    SELECT json_agg(json_build_object('product_id', t.product_id, 'requested', t.quantity,
                                      'available', pr.stock_on_hand) ORDER BY t.n)
    INTO v_short
    FROM unnest(v_take_ids, v_take_qty) WITH ORDINALITY AS t(product_id, quantity, n)
    JOIN products pr ON pr.id = t.product_id AND pr.track_stock
    WHERE pr.stock_on_hand < t.quantity;
    IF v_short IS NOT NULL THEN
        RETURN v_short;
    END IF;
    -- Register shifts (new): a POS order belongs to the register it names (which must be
    -- active: else TL422), or to the register of the open shift its creator is on; and to that
    -- register's open shift, taken FOR SHARE so a close waits for this order (and a close that
    -- won leaves the order without a shift). Both ids are added to the stored answer and
    -- returned, so the caller's answer matches.
    v_order.shift_id := NULL;
    IF v_order.channel = 'pos' THEN
        IF v_order.register_id IS NOT NULL THEN
            PERFORM 1 FROM registers WHERE id = v_order.register_id AND active;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no such register' USING ERRCODE = 'TL422';
            END IF;
            SELECT s.id INTO v_order.shift_id FROM shifts s
            WHERE s.register_id = v_order.register_id AND s.status = 'open' FOR SHARE;
        ELSE
            SELECT s.register_id, s.id INTO v_order.register_id, v_order.shift_id
            FROM shift_users su JOIN shifts s ON s.id = su.shift_id
            WHERE su.user_id = v_order.created_by AND su.on_shift AND s.status = 'open'
            FOR SHARE OF s;
        END IF;
    ELSE
        v_order.register_id := NULL;
    END IF;
    v_key.response_body := v_key.response_body
        || jsonb_build_object('register_id', v_order.register_id, 'shift_id', v_order.shift_id);
    WITH ins_order AS (
        INSERT INTO orders (id, number, channel, status, fulfilment, customer_id, created_by,
            subtotal_cents, discount_cents, tax_cents, total_cents, discount, note,
            delivery_address, currency, created_at, updated_at,
            register_id, shift_id) -- Register shifts (new)
        VALUES (v_order.id, v_order.number, v_order.channel, v_order.status, v_order.fulfilment,
            v_order.customer_id, v_order.created_by, v_order.subtotal_cents,
            v_order.discount_cents, v_order.tax_cents, v_order.total_cents, v_order.discount,
            v_order.note, v_order.delivery_address, v_order.currency, v_order.created_at,
            v_order.updated_at,
            v_order.register_id, v_order.shift_id) -- Register shifts (new)
    ), ins_lines AS (
        INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents,
            quantity, tax_rate_bp, track_stock, subtotal_cents, discount_cents, tax_cents,
            total_cents)
        SELECT v_order.id, l.line_no, l.product_id, l.sku, l.name, l.unit_price_cents,
            l.quantity, l.tax_rate_bp, l.track_stock, l.subtotal_cents, l.discount_cents,
            l.tax_cents, l.total_cents
        FROM jsonb_populate_recordset(NULL::order_lines, args -> 'lines') AS l
    ), ins_history AS (
        INSERT INTO order_status_history (order_id, seq, status, at, by)
        VALUES (v_order.id, 1, v_order.status, v_order.created_at, v_order.created_by)
    ), takes AS (
        SELECT * FROM unnest(v_take_ids, v_take_qty, v_take_mv)
            AS t(product_id, quantity, movement_id)
    ), upd AS (
        UPDATE products pr
        SET stock_on_hand = pr.stock_on_hand - takes.quantity, updated_at = now()
        FROM takes
        WHERE pr.id = takes.product_id AND pr.track_stock
        RETURNING pr.id, takes.quantity, takes.movement_id, pr.stock_on_hand
    ), ins_movements AS (
        INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, order_id,
                                         user_id)
        SELECT upd.movement_id, upd.id, -upd.quantity, args ->> 'movement_reason',
            upd.stock_on_hand, v_order.id, v_order.created_by
        FROM upd
    ), ins_audit AS (
        INSERT INTO audit_log (id, actor_id, action, entity_type, entity_id, data, request_id,
                               ip, at)
        SELECT a.id, a.actor_id, a.action, a.entity_type, a.entity_id, a.data, a.request_id,
            a.ip, a.at
        FROM jsonb_populate_recordset(NULL::audit_log, args -> 'audit') AS a
    ), ins_event AS (
        INSERT INTO outbox (topic, payload)
        SELECT e.topic, e.payload FROM jsonb_populate_record(NULL::outbox, args -> 'event') AS e
    )
    INSERT INTO idempotency_keys
        (scope, key, request_hash, response_status, response_body, response_headers)
    VALUES (v_key.scope, v_key.key, v_key.request_hash, v_key.response_status,
            v_key.response_body, v_key.response_headers);
    -- Register shifts (new): was RETURN NULL.
    RETURN json_build_object('register_id', v_order.register_id, 'shift_id', v_order.shift_id);
END
$$;
