-- no-transaction
-- Open online orders per customer: the cap checked by till_place_order (see 20261130200001).
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_online_customer_idx ON orders (customer_id)
    WHERE status = 'pending' AND channel = 'online' AND paid_cents < total_cents
