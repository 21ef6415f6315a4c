-- no-transaction
-- orders is the biggest table: its new indexes are built CONCURRENTLY (sales go on while they
-- build), each in its own file because PostgreSQL runs CONCURRENTLY only as a single statement
-- outside a transaction. IF NOT EXISTS lets a retry after an interrupted build succeed (drop the
-- invalid index it leaves first). Open online orders by age: the worker's expiry query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_online_idx ON orders (created_at)
    WHERE status = 'pending' AND channel = 'online' AND paid_cents < total_cents
