-- no-transaction
-- The old expiry index, replaced by orders_open_online_idx (see 20261130200001).
DROP INDEX CONCURRENTLY IF EXISTS orders_unpaid_online_idx
