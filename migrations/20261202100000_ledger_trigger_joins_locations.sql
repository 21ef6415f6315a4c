-- The ledger's statement trigger (migrations/20261201400000_locations.sql) asked for the default
-- location's id first, then looked for moves elsewhere. Every order fires it, and the question
-- cost a second statement (and a function call) each time although nearly every move is at the
-- default location. Now one statement answers it: the moved rows joined to their location.
-- Same rules, same effects.
CREATE OR REPLACE FUNCTION till_ledger_applied() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- Other locations' stock (the default location's is the remainder of the total). In
    -- product order; the writer already holds those products' locks.
    IF EXISTS (SELECT 1 FROM moved m JOIN locations l ON l.id = m.location_id
               WHERE NOT l.is_default) THEN
        -- Update, then insert the pairs that had no row: an INSERT … ON CONFLICT would check
        -- the CHECK on the proposed row (the bare delta) before finding the existing one.
        WITH d AS (
            SELECT m.product_id, m.location_id, sum(m.delta)::bigint AS delta
            FROM moved m JOIN locations l ON l.id = m.location_id
            WHERE NOT l.is_default
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
