-- no-transaction
-- The orders of a shift (its X and Z reports). orders is the biggest table: built CONCURRENTLY in
-- its own file, like migrations/20261130200001_orders_open_online_idx.sql. Only orders placed
-- during a shift are indexed.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_shift_idx ON orders (shift_id)
    WHERE shift_id IS NOT NULL
