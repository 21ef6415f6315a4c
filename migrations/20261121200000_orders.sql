-- Orders: replayed idempotent answers carry their headers (Location, ETag) as well as the body;
-- indexes for the board's "recent done" list and for the sales report's payment/refund days.
ALTER TABLE idempotency_keys ADD COLUMN response_headers JSONB NOT NULL DEFAULT '{}'::jsonb;

CREATE INDEX orders_done_updated_idx ON orders (updated_at DESC, id DESC)
    WHERE status IN ('completed', 'delivered');
CREATE INDEX payments_created_idx ON payments (created_at);
CREATE INDEX refunds_created_idx ON refunds (created_at);
