-- Product search for 1–2 character queries. `q` means "name contains q, case-insensitive";
-- from 3 characters on the trigram index products_name_trgm_idx answers it, but a shorter q has
-- no trigram, so a rare one (say "zq") would scan every product. This index holds every 1- and
-- 2-character substring of the lower-cased name, so a short q becomes an indexed array lookup:
--   till_short_grams(name) @> ARRAY[lower(q)]
-- The function is plain and IMMUTABLE (lower() is); GIN removes the duplicate entries itself.
CREATE FUNCTION till_short_grams(s text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    l text := lower(s);
    n int := char_length(l);
    grams text[] := '{}';
BEGIN
    FOR i IN 1..n LOOP
        grams := grams || substr(l, i, 1);
        IF i < n THEN
            grams := grams || substr(l, i, 2);
        END IF;
    END LOOP;
    RETURN grams;
END
$$;

-- GIN indexes buffer new entries in a pending list that every search scans linearly until it
-- is merged. With the default 4 MB, a burst of writes (a delivery, an import, a busy till: each
-- stock change rewrites the product row) made a trigram search ~100× slower (14 ms instead of
-- 0.1 ms on 100,000 products). A small list is merged often and stays cheap to scan.
CREATE INDEX products_name_grams_idx ON products USING gin (till_short_grams(name))
    WITH (gin_pending_list_limit = 256);
ALTER INDEX products_name_trgm_idx SET (gin_pending_list_limit = 256);
