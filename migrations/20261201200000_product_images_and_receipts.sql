-- Catalog media and receipts.
--
-- 1. `product_images`: the pictures of a product, in `position` order. The files live in
--    MEDIA_DIR under names derived from `file_key` (a hash of the uploaded bytes), so the same
--    picture uploaded twice is stored once; a file is removed only when no row names its key.
-- 2. `orders.receipt_count`: how many receipts were printed for the order; every one after the
--    first says COPY. A constant default, so adding it rewrites no rows.

CREATE TABLE product_images (
    id          UUID PRIMARY KEY,
    product_id  UUID NOT NULL REFERENCES products (id),
    position    INTEGER NOT NULL CHECK (position >= 0),
    file_key    TEXT NOT NULL CHECK (file_key ~ '^[0-9a-f]{32,64}$'),
    width       INTEGER NOT NULL CHECK (width > 0),
    height      INTEGER NOT NULL CHECK (height > 0),
    created_by  UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A product's images in order (its `images` and `thumb_url`).
CREATE INDEX product_images_product_idx ON product_images (product_id, position, id);
-- "Does any other image still use these files?"
CREATE INDEX product_images_file_key_idx ON product_images (file_key);

ALTER TABLE orders ADD COLUMN receipt_count INTEGER NOT NULL DEFAULT 0;
