-- no-transaction
-- The payments of a shift (its cash figures and tenders), built CONCURRENTLY: payments grows
-- with orders.
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_shift_idx ON payments (shift_id)
    WHERE shift_id IS NOT NULL
