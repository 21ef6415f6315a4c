-- Locations: stock per store and warehouse, transfers between them, stock counts.
--
-- 1. `locations`, and one default location (created here, `is_default`). Nothing can move the
--    default flag, and the default location cannot be deactivated.
-- 2. Stock per (product, location). `products.stock_on_hand` stays what it was: the total over
--    all locations, written by the same writers as before, always in the same statement as their
--    ledger movements. `stock_levels` holds the stock at every location except the default one;
--    the default location holds the rest (`stock_on_hand − Σ stock_levels`, see
--    `till_on_hand`). So the default location carries all existing stock without copying it,
--    and a deployment that never adds a location keeps exactly its old data and hot path: a
--    sale there updates `products` and the ledger as before, nothing else. `stock_levels` is
--    kept from the ledger by the statement trigger on `inventory_movements` (below): a movement
--    names its `location_id` (the column defaults to the default location), and movements at
--    other locations move their row. `balance_after` stays the product's total.
--    Lock order, unchanged: a writer locks the product rows (ascending id) before it reads or
--    changes their stock anywhere, so one product's stock at every location is changed by one
--    transaction at a time and the per-location check made under that lock is exact.
--    `stock_levels_on_hand_check` is the last line of defence at other locations,
--    `products_stock_on_hand_check` (on the total) at the default one.
-- 3. `inventory_movements.location_id` and `orders.location_id`: constant defaults (no table
--    rewrite). No foreign key on these two hot tables: every sale would take a KEY SHARE lock
--    on the same location row; locations are never deleted (only deactivated), so the reference
--    cannot dangle. `stock_levels`, transfers and counts do reference `locations`.
-- 4. Movement reasons gain `transfer_out`, `transfer_in`, `transfer_return`; movements may name
--    their `transfer_id` or `count_id`.
-- 5. Transfers (`transfers`, `transfer_lines`, `transfer_receipts`) and stock counts
--    (`stock_counts`, `stock_count_lines`).
-- 6. Registers belong to a location; `till_place_order(args jsonb)` takes stock at the order's
--    location; see its comment.

CREATE TABLE locations (
    id              UUID PRIMARY KEY,
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('store', 'warehouse')),
    address         TEXT,
    pickup_enabled  BOOLEAN NOT NULL DEFAULT false,
    active          BOOLEAN NOT NULL DEFAULT true,
    is_default      BOOLEAN NOT NULL DEFAULT false,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT locations_code_key UNIQUE (code),
    CONSTRAINT locations_default_active CHECK (NOT is_default OR active)
);
CREATE UNIQUE INDEX locations_one_default ON locations (is_default) WHERE is_default;
CREATE INDEX locations_name_idx ON locations (name, id);

CREATE TABLE stock_levels (
    product_id   UUID NOT NULL REFERENCES products (id),
    location_id  UUID NOT NULL REFERENCES locations (id),
    on_hand      BIGINT NOT NULL DEFAULT 0 CONSTRAINT stock_levels_on_hand_check CHECK (on_hand >= 0),
    PRIMARY KEY (product_id, location_id)
);
CREATE INDEX stock_levels_location_idx ON stock_levels (location_id, product_id);

-- The default location: a random id, written into the column defaults below as a constant.
DO $$
DECLARE
    v_default uuid := gen_random_uuid();
BEGIN
    INSERT INTO locations (id, code, name, kind, pickup_enabled, is_default)
    VALUES (v_default, 'MAIN', 'Main store', 'store', true, true);
    EXECUTE format('ALTER TABLE inventory_movements ADD COLUMN location_id uuid NOT NULL DEFAULT %L',
                   v_default);
    EXECUTE format('ALTER TABLE orders ADD COLUMN location_id uuid NOT NULL DEFAULT %L', v_default);
END
$$;

-- What a transfer's or a count's movements belong to (no foreign key: see 3. above).
ALTER TABLE inventory_movements ADD COLUMN transfer_id UUID, ADD COLUMN count_id UUID;

CREATE FUNCTION till_default_location_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT id FROM locations WHERE is_default $$;

-- On hand of a product at a location (see 2.): a `stock_levels` row, or for the default
-- location the total less every other location's stock. Read it under the product's lock.
CREATE FUNCTION till_on_hand(p_product uuid, p_location uuid) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_location = till_default_location_id() THEN
        (SELECT p.stock_on_hand FROM products p WHERE p.id = p_product)
        - COALESCE((SELECT sum(s.on_hand) FROM stock_levels s WHERE s.product_id = p_product), 0)
    ELSE
        COALESCE((SELECT s.on_hand FROM stock_levels s
                  WHERE s.product_id = p_product AND s.location_id = p_location), 0)
    END::bigint
$$;

ALTER TABLE inventory_movements DROP CONSTRAINT inventory_movements_reason_check;
ALTER TABLE inventory_movements ADD CONSTRAINT inventory_movements_reason_check
    CHECK (reason IN ('received', 'damage', 'count', 'correction', 'sale', 'cancel', 'return',
                      'transfer_out', 'transfer_in', 'transfer_return')) NOT VALID;
ALTER TABLE inventory_movements VALIDATE CONSTRAINT inventory_movements_reason_check;

-- The ledger's statement trigger, now two rules: the per-location stock (new) and the
-- low-stock alert (as in migrations/20261130100000_place_order_by_name.sql, on the total).
CREATE FUNCTION till_ledger_applied() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_default uuid := till_default_location_id();
BEGIN
    -- Other locations' stock (the default location's is the remainder of the total). In
    -- product order; the writer already holds those products' locks.
    IF EXISTS (SELECT 1 FROM moved m WHERE m.location_id <> v_default) THEN
        -- Update, then insert the pairs that had no row: an INSERT … ON CONFLICT would check
        -- the CHECK on the proposed row (the bare delta) before finding the existing one.
        WITH d AS (
            SELECT m.product_id, m.location_id, sum(m.delta)::bigint AS delta
            FROM moved m WHERE m.location_id <> v_default
            GROUP BY m.product_id, m.location_id
        ), upd AS (
            UPDATE stock_levels sl SET on_hand = sl.on_hand + d.delta
            FROM d WHERE sl.product_id = d.product_id AND sl.location_id = d.location_id
            RETURNING sl.product_id, sl.location_id
        )
        INSERT INTO stock_levels (product_id, location_id, on_hand)
        SELECT d.product_id, d.location_id, d.delta FROM d
        WHERE NOT EXISTS (SELECT 1 FROM upd
                          WHERE upd.product_id = d.product_id AND upd.location_id = d.location_id)
        ORDER BY d.product_id, d.location_id;
    END IF;
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

DROP TRIGGER inventory_movements_low_stock ON inventory_movements;
DROP FUNCTION till_low_stock_alerts();
CREATE TRIGGER inventory_movements_applied
    AFTER INSERT ON inventory_movements
    REFERENCING NEW TABLE AS moved
    FOR EACH STATEMENT EXECUTE FUNCTION till_ledger_applied();

-- Transfers. `received + damaged <= quantity` per line; outstanding = quantity − received −
-- damaged while the transfer is in transit or partially received (units in transit).
CREATE SEQUENCE transfer_number_seq START 1;
CREATE TABLE transfers (
    id                UUID PRIMARY KEY,
    number            BIGINT NOT NULL DEFAULT nextval('transfer_number_seq'),
    status            TEXT NOT NULL CHECK (status IN ('draft', 'in_transit', 'partially_received',
                                                      'received', 'cancelled')),
    from_location_id  UUID NOT NULL REFERENCES locations (id),
    to_location_id    UUID NOT NULL REFERENCES locations (id),
    note              TEXT,
    created_by        UUID REFERENCES users (id),
    status_history    JSONB NOT NULL DEFAULT '[]',
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT transfers_number_key UNIQUE (number),
    CONSTRAINT transfers_distinct_locations CHECK (from_location_id <> to_location_id)
);
CREATE INDEX transfers_created_idx ON transfers (created_at DESC, id DESC);
CREATE INDEX transfers_from_idx ON transfers (from_location_id, created_at DESC, id DESC);
CREATE INDEX transfers_to_idx ON transfers (to_location_id, created_at DESC, id DESC);
CREATE INDEX transfers_open_idx ON transfers (status)
    WHERE status IN ('draft', 'in_transit', 'partially_received');

CREATE TABLE transfer_lines (
    transfer_id  UUID NOT NULL REFERENCES transfers (id),
    line_no      INTEGER NOT NULL,
    product_id   UUID NOT NULL REFERENCES products (id),
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    quantity     BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    received     BIGINT NOT NULL DEFAULT 0 CHECK (received >= 0),
    damaged      BIGINT NOT NULL DEFAULT 0 CHECK (damaged >= 0),
    PRIMARY KEY (transfer_id, line_no),
    CONSTRAINT transfer_lines_product_key UNIQUE (transfer_id, product_id),
    CONSTRAINT transfer_lines_not_over CHECK (received + damaged <= quantity)
);
CREATE INDEX transfer_lines_product_idx ON transfer_lines (product_id);

CREATE TABLE transfer_receipts (
    id           UUID PRIMARY KEY,
    transfer_id  UUID NOT NULL REFERENCES transfers (id),
    lines        JSONB NOT NULL,
    created_by   UUID REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX transfer_receipts_transfer_idx ON transfer_receipts (transfer_id, created_at);

-- Stock counts. A line is stamped when counted: `counted_at`, and the location's on hand read
-- in that same statement (`expected_at_count`). Applying adds `counted − expected_at_count` to
-- the stock at that time, which is `counted + Σ movements after the stamp` (see till-db
-- `counts`).
CREATE TABLE stock_counts (
    id           UUID PRIMARY KEY,
    location_id  UUID NOT NULL REFERENCES locations (id),
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'applied', 'cancelled')),
    note         TEXT,
    created_by   UUID REFERENCES users (id),
    applied_by   UUID REFERENCES users (id),
    applied_at   TIMESTAMPTZ,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_counts_created_idx ON stock_counts (created_at DESC, id DESC);

CREATE TABLE stock_count_lines (
    count_id           UUID NOT NULL REFERENCES stock_counts (id),
    product_id         UUID NOT NULL REFERENCES products (id),
    counted            BIGINT NOT NULL CHECK (counted >= 0),
    counted_at         TIMESTAMPTZ NOT NULL,
    expected_at_count  BIGINT NOT NULL,
    PRIMARY KEY (count_id, product_id)
);

-- Registers belong to a location (null: the default location). The table is small: the
-- foreign key is checked here.
ALTER TABLE registers ADD CONSTRAINT registers_location_id_fkey
    FOREIGN KEY (location_id) REFERENCES locations (id);

-- Same as migrations/20261201100000_register_shifts.sql, with stock taken at the order's
-- location (marked "Locations" below). The register and shift are resolved first (moved up from
-- after the stock check, since the register decides the location). The location is the one the
-- order names (it must be active, and pickup-enabled when `args.pickup_location_only`: else
-- TL423 and nothing is written), else the register's location for a POS order, else the default
-- location. Shortages read that location's stock under the product lock, and name it. The
-- location is added to the stored answer and returned beside the register and shift; short
-- lines are still returned as an array. At the default location this is the old statement plus
-- one empty index probe per line: its stock is the total less the other locations' rows.
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
        INSERT INTO outbox (topic, payload)
        SELECT e.topic, e.payload FROM jsonb_populate_record(NULL::outbox, args -> 'event') AS e
    )
    INSERT INTO idempotency_keys
        (scope, key, request_hash, response_status, response_body, response_headers)
    VALUES (v_key.scope, v_key.key, v_key.request_hash, v_key.response_status,
            v_key.response_body, v_key.response_headers);
    RETURN json_build_object('register_id', v_order.register_id, 'shift_id', v_order.shift_id,
                             'location_id', v_order.location_id);
END
$$;
