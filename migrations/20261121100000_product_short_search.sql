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

CREATE INDEX products_name_grams_idx ON products USING gin (till_short_grams(name));
