-- An order's event (`outbox.payload`) carried the whole order as `data`, and the stored answer
-- (`idempotency_keys.response_body`) carried it again: the same ~1.6 KB of JSON sent twice in
-- the order function's argument and parsed twice, on the busiest write. And the event's copy was
-- the order as asked for, before the function resolved its location, register and shift, so a
-- webhook's `order.created` said `location_id: null` where `GET` says the default location.
--
-- Now `args.event.payload` comes without `data`, and the function adds the stored answer (the
-- order as placed, with the location, register and shift it resolved) as `data`. Otherwise the
-- same as migrations/20261201400000_locations.sql (the one changed statement is marked
-- "Event data").
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
    v_default boolean;
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
    -- Register shifts: a POS order belongs to the register it names (which must be active:
    -- else TL422), or to the register of the open shift its creator is on; and to that
    -- register's open shift, taken FOR SHARE so a close waits for this order (and a close that
    -- won leaves the order without a shift).
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
    -- Locations (new): the order's stock location.
    IF v_order.location_id IS NULL AND v_order.register_id IS NOT NULL THEN
        SELECT r.location_id INTO v_order.location_id FROM registers r
        WHERE r.id = v_order.register_id;
    END IF;
    IF v_order.location_id IS NOT NULL THEN
        SELECT is_default INTO v_default FROM locations
        WHERE id = v_order.location_id AND active
          AND (pickup_enabled OR NOT coalesce((args ->> 'pickup_location_only')::bool, false));
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such location' USING ERRCODE = 'TL423';
        END IF;
    ELSE
        v_order.location_id := till_default_location_id();
        v_default := true;
    END IF;
    PERFORM 1 FROM products
    WHERE id = ANY (v_take_ids) AND track_stock ORDER BY id FOR NO KEY UPDATE;
    -- Locations (changed): the stock at the order's location, not the total.
    SELECT json_agg(json_build_object('product_id', t.product_id, 'requested', t.quantity,
                                      'available', t.available,
                                      'location_id', v_order.location_id) ORDER BY t.n)
    INTO v_short
    FROM (SELECT t.product_id, t.quantity, t.n,
                 CASE WHEN v_default THEN
                     pr.stock_on_hand - COALESCE((SELECT sum(s.on_hand) FROM stock_levels s
                                                  WHERE s.product_id = t.product_id), 0)::bigint
                 ELSE
                     COALESCE((SELECT s.on_hand FROM stock_levels s
                               WHERE s.product_id = t.product_id
                                 AND s.location_id = v_order.location_id), 0)
                 END AS available
          FROM unnest(v_take_ids, v_take_qty) WITH ORDINALITY AS t(product_id, quantity, n)
          JOIN products pr ON pr.id = t.product_id AND pr.track_stock) t
    WHERE t.available < t.quantity;
    IF v_short IS NOT NULL THEN
        RETURN v_short;
    END IF;
    v_key.response_body := v_key.response_body
        || jsonb_build_object('register_id', v_order.register_id, 'shift_id', v_order.shift_id,
                              'location_id', v_order.location_id);
    WITH ins_order AS (
        INSERT INTO orders (id, number, channel, status, fulfilment, customer_id, created_by,
            subtotal_cents, discount_cents, tax_cents, total_cents, discount, note,
            delivery_address, currency, created_at, updated_at,
            register_id, shift_id, location_id)
        VALUES (v_order.id, v_order.number, v_order.channel, v_order.status, v_order.fulfilment,
            v_order.customer_id, v_order.created_by, v_order.subtotal_cents,
            v_order.discount_cents, v_order.tax_cents, v_order.total_cents, v_order.discount,
            v_order.note, v_order.delivery_address, v_order.currency, v_order.created_at,
            v_order.updated_at,
            v_order.register_id, v_order.shift_id, v_order.location_id)
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
        -- The ledger's trigger moves another location's row (and alerts).
        INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, order_id,
                                         user_id, location_id) -- Locations (new)
        SELECT upd.movement_id, upd.id, -upd.quantity, args ->> 'movement_reason',
            upd.stock_on_hand, v_order.id, v_order.created_by, v_order.location_id
        FROM upd
    ), ins_audit AS (
        INSERT INTO audit_log (id, actor_id, action, entity_type, entity_id, data, request_id,
                               ip, at)
        SELECT a.id, a.actor_id, a.action, a.entity_type, a.entity_id, a.data, a.request_id,
            a.ip, a.at
        FROM jsonb_populate_recordset(NULL::audit_log, args -> 'audit') AS a
    ), ins_event AS (
        -- Event data (changed): the order as placed is the stored answer.
        INSERT INTO outbox (topic, payload)
        SELECT e.topic, e.payload || jsonb_build_object('data', v_key.response_body)
        FROM jsonb_populate_record(NULL::outbox, args -> 'event') AS e
    )
    INSERT INTO idempotency_keys
        (scope, key, request_hash, response_status, response_body, response_headers)
    VALUES (v_key.scope, v_key.key, v_key.request_hash, v_key.response_status,
            v_key.response_body, v_key.response_headers);
    RETURN json_build_object('register_id', v_order.register_id, 'shift_id', v_order.shift_id,
                             'location_id', v_order.location_id);
END
$$;
