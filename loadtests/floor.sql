-- loadtests/checkout.sh with FLOOR=1: the database floor's arguments.
--
-- From one order's argument of till_place_order, captured from a real `POST /api/v1/orders`
-- (bench_capture, one row), makes :n documents in bench_args, each a new in-store order: its
-- own order id and number, idempotency key, audit entry id and movement ids, and 3 distinct
-- products spread over the catalogue (quantities 1, 2 and 3, as captured). pgbench then places
-- them with loadtests/floor.pgb: the same two statements Till sends per order, without Till.
-- Rows are numbered 1.. without gaps (a row whose products would repeat one is left out), so
-- floor.pgb's counter never lands on a missing row. Ids are time-ordered like Till's UUIDv7s (a
-- counter in the leading bits), so index inserts land where Till's do. Order numbers start at
-- 10^12, far above any the benchmark makes.
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_args;
DROP SEQUENCE IF EXISTS bench_seq;
CREATE SEQUENCE bench_seq;
CREATE TABLE bench_args (i bigint PRIMARY KEY, scope text, key text, ids uuid[], args jsonb);
WITH catalogue AS (
    SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n FROM products
), g AS (
    SELECT i,
        (lpad(to_hex(i), 12, '0') || '7' || substr(md5('o' || i), 1, 19))::uuid AS order_id,
        (lpad(to_hex(i), 12, '0') || '8' || substr(md5('a' || i), 1, 19))::uuid AS audit_id,
        ARRAY[(lpad(to_hex(i), 12, '0') || '9' || substr(md5('m1' || i), 1, 19))::uuid,
              (lpad(to_hex(i), 12, '0') || 'a' || substr(md5('m2' || i), 1, 19))::uuid,
              (lpad(to_hex(i), 12, '0') || 'b' || substr(md5('m3' || i), 1, 19))::uuid] AS movement_ids,
        ARRAY[c.ids[1 + (i * 7919) % c.n], c.ids[1 + (i * 104729 + c.n / 3) % c.n],
              c.ids[1 + (i * 1299709 + 2 * c.n / 3) % c.n]] AS pids
    FROM generate_series(1::bigint, :n) AS i, catalogue c
)
INSERT INTO bench_args
SELECT row_number() OVER (ORDER BY g.i), t.args #>> '{idempotency,scope}', 'floor-' || g.i, g.pids,
    jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(
    jsonb_set(jsonb_set(jsonb_set(jsonb_set(t.args,
        '{order,id}', to_jsonb(g.order_id)),
        '{order,number}', to_jsonb(1000000000000 + g.i)),
        '{idempotency,key}', to_jsonb('floor-' || g.i)),
        '{idempotency,response_body,id}', to_jsonb(g.order_id)),
        '{audit,0,id}', to_jsonb(g.audit_id)),
        '{audit,0,entity_id}', to_jsonb(g.order_id)),
        '{event,payload,order,id}', to_jsonb(g.order_id)),
        '{takes,0}', jsonb_build_object('quantity', 1, 'product_id', g.pids[1], 'movement_id', g.movement_ids[1])),
        '{takes,1}', jsonb_build_object('quantity', 2, 'product_id', g.pids[2], 'movement_id', g.movement_ids[2])),
        '{takes,2}', jsonb_build_object('quantity', 3, 'product_id', g.pids[3], 'movement_id', g.movement_ids[3])),
        '{lines,0,product_id}', to_jsonb(g.pids[1])),
        '{lines,1,product_id}', to_jsonb(g.pids[2])),
        '{lines,2,product_id}', to_jsonb(g.pids[3]))
FROM g, (SELECT args FROM bench_capture LIMIT 1) t
WHERE g.pids[1] <> g.pids[2] AND g.pids[2] <> g.pids[3] AND g.pids[1] <> g.pids[3];
ANALYZE bench_args;
