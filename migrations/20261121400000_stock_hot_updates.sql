-- Stock moves on every sale. An index whose predicate mentions stock_on_hand forces every such
-- UPDATE to write new entries into all of the products indexes (no heap-only tuple updates),
-- trigram GIN included. The low-stock list walks products_name_id_idx with a filter instead,
-- and free space on each page lets stock updates stay on the page (HOT).
DROP INDEX products_low_stock_idx;
ALTER TABLE products SET (fillfactor = 90);
