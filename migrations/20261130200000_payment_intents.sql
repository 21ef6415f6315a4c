-- Money integrity: payment intents confirmed by the payment provider, the open-orders cap, and
-- the worker's "not fully paid" rule.
--
-- 1. `payment_intents`: an online payment the provider is asked to take, for the order's balance
--    due at the time. The provider's signed callback settles it. `payments.intent_id` is unique,
--    so whatever the number of deliveries of a callback, at most one payment exists per intent.
-- 2. Pending online orders that are not fully paid (`paid_cents < total_cents`) get two small
--    partial indexes: by age (the worker's expiry) and by customer (the open-orders cap counted
--    when a customer places one more). They replace the "paid nothing" index.
-- 3. `till_place_order(args jsonb)` gains the open-orders cap: with `args.open_orders_cap` set
--    (online orders), it takes a transaction-scoped advisory lock on the customer and counts that
--    customer's open orders in a new statement (so a new snapshot: orders committed by whoever
--    held the lock before are seen). Two requests for one customer, on any instance, therefore
--    count one after the other and the cap holds. Over the cap → SQLSTATE TL429, nothing written.
--    Till orders (no cap given) pay nothing extra.

CREATE TABLE payment_intents (
    id            UUID PRIMARY KEY,
    order_id      UUID NOT NULL REFERENCES orders (id),
    amount_cents  BIGINT NOT NULL CHECK (amount_cents > 0),
    status        TEXT NOT NULL DEFAULT 'requires_confirmation'
                  CHECK (status IN ('requires_confirmation', 'succeeded', 'failed')),
    reference     TEXT,
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_intents_order_idx ON payment_intents (order_id, created_at);

ALTER TABLE payments ADD COLUMN intent_id UUID REFERENCES payment_intents (id);
CREATE UNIQUE INDEX payments_intent_id_key ON payments (intent_id) WHERE intent_id IS NOT NULL;

-- The indexes on orders for open online orders are built without blocking writes in the next
-- migration (CONCURRENTLY cannot run inside this one's transaction).

-- Same as migrations/20261130100000_place_order_by_name.sql, plus the cap (marked below).
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
    -- The open-orders cap (new): one customer's orders are counted one request at a time.
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
    WITH ins_order AS (
        INSERT INTO orders (id, number, channel, status, fulfilment, customer_id, created_by,
            subtotal_cents, discount_cents, tax_cents, total_cents, discount, note,
            delivery_address, currency, created_at, updated_at)
        VALUES (v_order.id, v_order.number, v_order.channel, v_order.status, v_order.fulfilment,
            v_order.customer_id, v_order.created_by, v_order.subtotal_cents,
            v_order.discount_cents, v_order.tax_cents, v_order.total_cents, v_order.discount,
            v_order.note, v_order.delivery_address, v_order.currency, v_order.created_at,
            v_order.updated_at)
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
    RETURN NULL;
END
$$;
