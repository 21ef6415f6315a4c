-- Till's initial schema. Money is BIGINT minor units, keys are UUIDs (v7, made by the app),
-- timestamps are timestamptz. Every stock change is a row in inventory_movements written in the
-- same transaction as the products.stock_on_hand update; the CHECK is the last line of defence
-- against overselling.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE customers (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    phone       TEXT,
    email       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT customers_phone_key UNIQUE (phone)
);
CREATE INDEX customers_created_idx ON customers (created_at DESC, id DESC);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    name          TEXT NOT NULL,
    phone         TEXT,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'cashier', 'staff', 'customer')),
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    customer_id   UUID REFERENCES customers (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_created_idx ON users (created_at, id);

CREATE TABLE categories (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT categories_slug_key UNIQUE (slug)
);

CREATE TABLE products (
    id                  UUID PRIMARY KEY,
    sku                 TEXT NOT NULL,
    barcode             TEXT,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    category_id         UUID REFERENCES categories (id),
    price_cents         BIGINT NOT NULL CHECK (price_cents >= 0),
    tax_rate_bp         INTEGER NOT NULL CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    track_stock         BOOLEAN NOT NULL DEFAULT TRUE,
    stock_on_hand       BIGINT NOT NULL DEFAULT 0 CHECK (stock_on_hand >= 0),
    low_stock_threshold BIGINT NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT products_sku_key UNIQUE (sku),
    CONSTRAINT products_barcode_key UNIQUE (barcode)
);
-- Listing is keyset-ordered by (name, id); the partial index serves the public (active-only) catalog.
CREATE INDEX products_name_id_idx ON products (name, id);
CREATE INDEX products_active_name_id_idx ON products (name, id) WHERE active;
CREATE INDEX products_category_name_idx ON products (category_id, name, id);
-- `q` is "name contains, case-insensitive": ILIKE '%q%' is served by a trigram GIN index.
CREATE INDEX products_name_trgm_idx ON products USING gin (name gin_trgm_ops);
CREATE INDEX products_low_stock_idx ON products (name, id) WHERE track_stock AND stock_on_hand <= low_stock_threshold;

CREATE SEQUENCE order_number_seq START 1001;

CREATE TABLE orders (
    id                UUID PRIMARY KEY,
    number            BIGINT NOT NULL DEFAULT nextval('order_number_seq'),
    channel           TEXT NOT NULL CHECK (channel IN ('pos', 'online')),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'preparing', 'ready',
                        'out_for_delivery', 'delivered', 'completed', 'cancelled')),
    fulfilment        TEXT NOT NULL CHECK (fulfilment IN ('in_store', 'pickup', 'delivery')),
    customer_id       UUID REFERENCES customers (id),
    created_by        UUID REFERENCES users (id),
    subtotal_cents    BIGINT NOT NULL CHECK (subtotal_cents >= 0),
    discount_cents    BIGINT NOT NULL CHECK (discount_cents >= 0),
    tax_cents         BIGINT NOT NULL CHECK (tax_cents >= 0),
    total_cents       BIGINT NOT NULL CHECK (total_cents >= 0),
    paid_cents        BIGINT NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
    refunded_cents    BIGINT NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= paid_cents),
    discount          JSONB,
    note              TEXT,
    delivery_address  TEXT,
    currency          TEXT NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT orders_number_key UNIQUE (number),
    CONSTRAINT orders_paid_le_total CHECK (paid_cents <= total_cents)
);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at, id);
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_unpaid_online_idx ON orders (created_at) WHERE status = 'pending' AND channel = 'online' AND paid_cents = 0;

CREATE TABLE order_lines (
    order_id          UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no           INTEGER NOT NULL,
    product_id        UUID NOT NULL REFERENCES products (id),
    sku               TEXT NOT NULL,
    name              TEXT NOT NULL,
    unit_price_cents  BIGINT NOT NULL,
    quantity          BIGINT NOT NULL CHECK (quantity > 0),
    tax_rate_bp       INTEGER NOT NULL,
    track_stock       BOOLEAN NOT NULL,
    subtotal_cents    BIGINT NOT NULL,
    discount_cents    BIGINT NOT NULL,
    tax_cents         BIGINT NOT NULL,
    total_cents       BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_product_idx ON order_lines (product_id);

CREATE TABLE order_status_history (
    order_id  UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    status    TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    by        UUID,
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE payments (
    id              UUID PRIMARY KEY,
    order_id        UUID NOT NULL REFERENCES orders (id),
    method          TEXT NOT NULL CHECK (method IN ('cash', 'card', 'other')),
    amount_cents    BIGINT NOT NULL CHECK (amount_cents > 0),
    tendered_cents  BIGINT,
    change_cents    BIGINT NOT NULL DEFAULT 0,
    reference       TEXT,
    created_by      UUID,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_order_idx ON payments (order_id, created_at);

CREATE TABLE refunds (
    id            UUID PRIMARY KEY,
    order_id      UUID NOT NULL REFERENCES orders (id),
    amount_cents  BIGINT NOT NULL CHECK (amount_cents > 0),
    reason        TEXT NOT NULL,
    restock       JSONB NOT NULL DEFAULT '[]',
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);

CREATE TABLE inventory_movements (
    id             UUID PRIMARY KEY,
    product_id     UUID NOT NULL REFERENCES products (id),
    delta          BIGINT NOT NULL CHECK (delta <> 0),
    reason         TEXT NOT NULL CHECK (reason IN ('received', 'damage', 'count', 'correction', 'sale', 'cancel', 'return')),
    balance_after  BIGINT NOT NULL CHECK (balance_after >= 0),
    order_id       UUID REFERENCES orders (id),
    note           TEXT,
    user_id        UUID,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inventory_movements_product_idx ON inventory_movements (product_id, created_at DESC, id DESC);
CREATE INDEX inventory_movements_created_idx ON inventory_movements (created_at DESC, id DESC);
CREATE INDEX inventory_movements_order_idx ON inventory_movements (order_id) WHERE order_id IS NOT NULL;

-- Keys are scoped to the caller. The row is written in the same transaction as the effect;
-- a row with response_status NULL is a request still running (409 idempotency_key_in_use).
CREATE TABLE idempotency_keys (
    scope            TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_status  INTEGER,
    response_body    JSONB,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id           UUID PRIMARY KEY,
    actor_id     UUID,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT,
    data         JSONB NOT NULL DEFAULT '{}',
    request_id   TEXT,
    ip           TEXT,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC, id DESC);

CREATE TABLE jobs (
    id            UUID PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       JSONB NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'failed', 'done')),
    priority      INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 10,
    run_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until  TIMESTAMPTZ,
    locked_by     TEXT,
    last_error    TEXT,
    dedupe_key    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX jobs_ready_idx ON jobs (priority DESC, run_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_status_idx ON jobs (status, created_at DESC, id DESC);
CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');

-- Transactional outbox: events are written with the change they describe and published after
-- commit, so a crash between commit and publish loses nothing; reconnecting subscribers catch up by id.
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    topic         TEXT NOT NULL,
    payload       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
