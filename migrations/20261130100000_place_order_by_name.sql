-- Order creation's write takes its arguments by name, and two rules get one definition each.
--
-- 1. `till_idempotency_lock_id(scope, key)`: the transaction-scoped advisory lock id of an
--    idempotency key. till-db `idempotency::claim` and `till_place_order` both lock through it,
--    so a request that claims a key and an order placed with the same key always exclude each
--    other. PostgreSQL's 64-bit text hash: a collision only makes two unrelated keys wait for
--    each other (409, retry), never share an answer.
-- 2. The low-stock rule, as a statement trigger on the stock ledger: a movement that takes a
--    tracked product from above its `low_stock_threshold` to at or below it enqueues one
--    `stock.low_alert` job (at most one pending per product). Every writer of the ledger (sales,
--    cancels, returns, manual adjustments, seeds) gets it without repeating it.
-- 3. `till_place_order(args jsonb)` replaces the 44-argument function: till-db `checkout::place`
--    serializes one `#[derive(Serialize)]` document whose keys are the column names, read here
--    with `jsonb_populate_record(NULL::<table>, …)`, so a field is bound by its name and typed by
--    its table's column. Same steps and guarantees as before (see the previous migration): key
--    lock first, tracked products locked in id order, shortages read under the lock, then every
--    row and the idempotency answer in one statement.

CREATE FUNCTION till_idempotency_lock_id(p_scope text, p_key text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT hashtextextended(p_scope || chr(31) || p_key, 0) $$;

CREATE FUNCTION till_low_stock_alerts() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- AFTER the statement: `products` already shows the stock the movements left.
    INSERT INTO jobs (id, kind, payload, priority, dedupe_key)
    SELECT gen_random_uuid(), 'stock.low_alert', jsonb_build_object('product_id', p.id), 5,
           'stock.low:' || p.id
    FROM moved m
    JOIN products p ON p.id = m.product_id
    WHERE p.track_stock
      AND m.balance_after <= p.low_stock_threshold
      AND m.balance_after - m.delta > p.low_stock_threshold
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
    DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER inventory_movements_low_stock
    AFTER INSERT ON inventory_movements
    REFERENCING NEW TABLE AS moved
    FOR EACH STATEMENT EXECUTE FUNCTION till_low_stock_alerts();

DROP FUNCTION till_place_order(
    uuid, bigint, text, text, uuid, uuid, bigint, bigint, bigint, bigint, jsonb, text, text, text,
    timestamptz,
    uuid[], text[], text[], bigint[], bigint[], int[], bool[], bigint[], bigint[], bigint[],
    bigint[],
    uuid[], bigint[], uuid[], text,
    uuid, text, text, uuid[], text[], jsonb[],
    text, jsonb,
    text, text, text, int, jsonb, jsonb);

-- `args`: {
--   "order":       an `orders` row (id, number, channel, status, fulfilment, customer_id,
--                  created_by, the four totals, discount, note, delivery_address, currency,
--                  created_at, updated_at),
--   "lines":       `order_lines` rows without order_id,
--   "takes":       [{movement_id, product_id, quantity}], one per tracked line, in line order,
--   "movement_reason": the `sale` movements' reason,
--   "audit":       `audit_log` rows,
--   "event":       an `outbox` row (topic, payload),
--   "idempotency": an `idempotency_keys` row (scope, key, request_hash, response_status,
--                  response_body, response_headers) }
-- Returns NULL when written, else the short lines `[{product_id, requested, available}]`.
CREATE FUNCTION till_place_order(args jsonb) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_order orders := jsonb_populate_record(NULL::orders, args -> 'order');
    v_key idempotency_keys := jsonb_populate_record(NULL::idempotency_keys, args -> 'idempotency');
    v_take_ids uuid[];
    v_take_qty bigint[];
    v_take_mv uuid[];
    v_short json;
BEGIN
    -- The takes as arrays, in line order. The statements below join them to `products` through
    -- `unnest`, which a generic plan expects to be small (nested loop on the primary key); joined
    -- straight from `jsonb_to_recordset` (planned as 100 rows) they got a hash join over a scan of
    -- the whole products table, ten times slower per order.
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
    -- Sorted, then locked as rows leave the sort: every order locks in id order.
    PERFORM 1 FROM products
    WHERE id = ANY (v_take_ids) AND track_stock ORDER BY id FOR NO KEY UPDATE;
    -- A new statement, so a new snapshot: the stock of rows we now hold, as last committed.
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
        -- Rows locked above: nobody else can have changed them since.
        UPDATE products pr
        SET stock_on_hand = pr.stock_on_hand - takes.quantity, updated_at = now()
        FROM takes
        WHERE pr.id = takes.product_id AND pr.track_stock
        RETURNING pr.id, takes.quantity, takes.movement_id, pr.stock_on_hand
    ), ins_movements AS (
        -- The ledger's trigger enqueues any low-stock alert.
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
