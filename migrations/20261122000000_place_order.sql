-- Order creation's one write (till-db `checkout::place`), as a function for one reason: its
-- `SET plan_cache_mode = force_generic_plan`. Called as a plain prepared statement, this
-- twelve-table statement was planned afresh on every execution (PostgreSQL keeps choosing a
-- custom plan because the generic plan's estimates assume 100 rows per array), and planning
-- was the largest part of an order's database time. Inside the function the plan is built once
-- per connection and reused; no other statement's planning changes.
--
-- First it locks the tracked products in ascending id order (so concurrent orders cannot
-- deadlock) and reads their stock under the lock: if any line is short it writes nothing and
-- returns the short lines as JSON `[{product_id, requested, available}]`. Otherwise it writes,
-- all or nothing, and returns NULL: the order, its lines and first history entry, the stock of
-- every tracked line, their ledger movements, a `stock.low_alert` job for each product that
-- just crossed its threshold (the same rule as till-db `stock::LOW_STOCK_ALERT`), the audit
-- entries, the outbox event, and the idempotency key with its stored answer.
--
-- The key's transaction-scoped advisory lock (the same one till-db `idempotency::claim` takes)
-- comes first: if another request with this key is being written right now, this one fails at
-- once with SQLSTATE TL409 (API.md: 409 `idempotency_key_in_use`) instead of waiting for it. A
-- request whose key was stored by one that already committed fails on `idempotency_keys_pkey`,
-- and the caller replays the stored answer.
CREATE FUNCTION till_place_order(
    p_id uuid, p_number bigint, p_channel text, p_fulfilment text, p_customer_id uuid,
    p_created_by uuid, p_subtotal bigint, p_discount bigint, p_tax bigint, p_total bigint,
    p_discount_spec jsonb, p_note text, p_delivery_address text, p_currency text,
    p_now timestamptz,
    -- lines, one array element per line
    p_product_ids uuid[], p_skus text[], p_names text[], p_prices bigint[], p_quantities bigint[],
    p_tax_rates int[], p_tracks bool[], p_line_subtotals bigint[], p_line_discounts bigint[],
    p_line_taxes bigint[], p_line_totals bigint[],
    -- stock: one element per tracked product
    p_take_ids uuid[], p_take_qty bigint[], p_movement_ids uuid[], p_reason text,
    -- audit
    p_actor uuid, p_request_id text, p_ip text, p_audit_ids uuid[], p_audit_actions text[],
    p_audit_data jsonb[],
    -- outbox event
    p_topic text, p_event jsonb,
    -- idempotency key and answer
    p_scope text, p_key text, p_request_hash text, p_status int, p_body jsonb, p_headers jsonb
) RETURNS json
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_short json;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_scope || chr(31) || p_key, 0)) THEN
        RAISE EXCEPTION 'idempotency key in use' USING ERRCODE = 'TL409';
    END IF;
    -- Sorted, then locked as rows leave the sort: every order locks in id order.
    PERFORM 1 FROM products
    WHERE id = ANY (p_take_ids) AND track_stock ORDER BY id FOR NO KEY UPDATE;
    -- A new statement, so a new snapshot: the stock of rows we now hold, as last committed.
    SELECT json_agg(json_build_object('product_id', r.product_id, 'requested', r.qty,
                                      'available', p.stock_on_hand) ORDER BY r.n)
    INTO v_short
    FROM unnest(p_take_ids, p_take_qty) WITH ORDINALITY AS r(product_id, qty, n)
    JOIN products p ON p.id = r.product_id AND p.track_stock
    WHERE p.stock_on_hand < r.qty;
    IF v_short IS NOT NULL THEN
        RETURN v_short;
    END IF;
    WITH o AS (
        INSERT INTO orders (id, number, channel, status, fulfilment, customer_id, created_by,
            subtotal_cents, discount_cents, tax_cents, total_cents, discount, note,
            delivery_address, currency, created_at, updated_at)
        VALUES (p_id, p_number, p_channel, 'pending', p_fulfilment, p_customer_id, p_created_by,
            p_subtotal, p_discount, p_tax, p_total, p_discount_spec, p_note, p_delivery_address,
            p_currency, p_now, p_now)
    ), l AS (
        INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents,
            quantity, tax_rate_bp, track_stock, subtotal_cents, discount_cents, tax_cents,
            total_cents)
        SELECT p_id, u.n, u.product_id, u.sku, u.name, u.price, u.quantity, u.tax_rate_bp,
            u.track_stock, u.subtotal, u.discount, u.tax, u.total
        FROM unnest(p_product_ids, p_skus, p_names, p_prices, p_quantities, p_tax_rates, p_tracks,
                    p_line_subtotals, p_line_discounts, p_line_taxes, p_line_totals)
             WITH ORDINALITY AS u(product_id, sku, name, price, quantity, tax_rate_bp,
                                  track_stock, subtotal, discount, tax, total, n)
    ), h AS (
        INSERT INTO order_status_history (order_id, seq, status, at, by)
        VALUES (p_id, 1, 'pending', p_now, p_created_by)
    ), req AS (
        SELECT * FROM unnest(p_take_ids, p_take_qty, p_movement_ids)
            AS r(product_id, qty, movement_id)
    ), upd AS (
        -- Rows locked above: nobody else can have changed them since.
        UPDATE products p
        SET stock_on_hand = p.stock_on_hand - req.qty, updated_at = now()
        FROM req
        WHERE p.id = req.product_id AND p.track_stock
        RETURNING p.id, -req.qty AS delta, req.movement_id, p.stock_on_hand, p.track_stock,
                  p.low_stock_threshold
    ), alert AS (
        INSERT INTO jobs (id, kind, payload, priority, dedupe_key)
        SELECT gen_random_uuid(), 'stock.low_alert', jsonb_build_object('product_id', upd.id), 5,
               'stock.low:' || upd.id
        FROM upd
        WHERE upd.track_stock AND upd.stock_on_hand <= upd.low_stock_threshold
          AND upd.stock_on_hand - upd.delta > upd.low_stock_threshold
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
        DO NOTHING
    ), mov AS (
        INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, order_id,
                                         user_id)
        SELECT movement_id, id, delta, p_reason, stock_on_hand, p_id, p_created_by FROM upd
    ), a AS (
        INSERT INTO audit_log (id, actor_id, action, entity_type, entity_id, data, request_id,
                               ip, at)
        SELECT u.id, p_actor, u.action, 'order', p_id::text, u.data, p_request_id, p_ip, p_now
        FROM unnest(p_audit_ids, p_audit_actions, p_audit_data) AS u(id, action, data)
    ), ev AS (
        INSERT INTO outbox (topic, payload) VALUES (p_topic, p_event)
    )
    INSERT INTO idempotency_keys
        (scope, key, request_hash, response_status, response_body, response_headers)
    VALUES (p_scope, p_key, p_request_hash, p_status, p_body, p_headers);
    RETURN NULL;
END
$$;

-- The read before an order (till-db `checkout::prepare`), a function for the same reason: as a
-- plain statement its sub-selects were planned again on every call. Returns the new order number
-- (a failed order leaves a gap), the database clock, whether the named customer exists (NULL when
-- none was named), the basket's products as JSON, and the idempotency key's stored answer if any.
CREATE FUNCTION till_prepare_order(p_scope text, p_key text, p_product_ids uuid[],
                                   p_customer_id uuid)
RETURNS TABLE (number bigint, now timestamptz, customer_exists boolean, products json,
               request_hash text, response_status int, response_body jsonb,
               response_headers jsonb)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT nextval('order_number_seq'), pg_catalog.now(),
        CASE WHEN p_customer_id IS NULL THEN NULL
             ELSE EXISTS (SELECT 1 FROM customers c WHERE c.id = p_customer_id) END,
        (SELECT COALESCE(json_agg(json_build_object(
             'id', p.id, 'sku', p.sku, 'name', p.name, 'price_cents', p.price_cents,
             'tax_rate_bp', p.tax_rate_bp, 'active', p.active, 'track_stock', p.track_stock)),
             '[]')
         FROM products p WHERE p.id = ANY (p_product_ids)),
        k.request_hash, k.response_status, k.response_body, k.response_headers
    FROM (SELECT 1) one
    LEFT JOIN idempotency_keys k ON k.scope = p_scope AND k.key = p_key;
END
$$;
