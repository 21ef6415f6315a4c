-- wrk script: every request searches a different SKU (`q=<prefix><7 digits>`), so the catalog
-- cache almost never has the answer and the search runs in PostgreSQL. The prefix and the
-- product count come from BENCH_SKU_PREFIX and BENCH_PRODUCTS (set by loadtests/catalog.sh).
local prefix = os.getenv("BENCH_SKU_PREFIX") or "BN-XXXXXX-"
local n = tonumber(os.getenv("BENCH_PRODUCTS") or "100000")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  local k = math.random(0, n - 1)
  return wrk.format("GET", string.format("/api/v1/products?limit=20&q=%s%07d", prefix, k))
end
