-- wrk script for loadtests/checkout.sh: every request is a new 3-line in-store order.
--
--   TILL_TOKEN          Bearer token of a cashier
--   TILL_PRODUCTS_FILE  product ids, one per line
--   TILL_RUN            a tag unique to this run, so Idempotency-Keys never repeat across runs
--
-- Each request picks 3 distinct random products (quantity 1..3) and a fresh Idempotency-Key.
-- done() prints one machine-readable line: "BENCH requests=… rps=… p50_ms=… p99_ms=… non2xx=…".

local ids = {}
local token
local run
local counter = 0
local next_thread = 0
-- `thread_no` is a global on purpose: setup() sets it in each thread's own Lua state.

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
end

function init(args)
  thread_no = thread_no or 0
  token = os.getenv("TILL_TOKEN")
  run = os.getenv("TILL_RUN") or tostring(os.time())
  local f = assert(io.open(os.getenv("TILL_PRODUCTS_FILE"), "r"))
  for line in f:lines() do
    if #line > 0 then
      ids[#ids + 1] = line
    end
  end
  f:close()
  math.randomseed(os.time() * 1000 + thread_no)
end

local function three_distinct()
  local n = #ids
  local a = math.random(n)
  local b = math.random(n)
  while b == a do b = math.random(n) end
  local c = math.random(n)
  while c == a or c == b do c = math.random(n) end
  return ids[a], ids[b], ids[c]
end

function request()
  counter = counter + 1
  local a, b, c = three_distinct()
  local body = string.format(
    '{"fulfilment":"in_store","lines":[{"product_id":"%s","quantity":%d},{"product_id":"%s","quantity":%d},{"product_id":"%s","quantity":%d}]}',
    a, math.random(3), b, math.random(3), c, math.random(3))
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("%s-%d-%d", run, thread_no, counter),
  }
  return wrk.format("POST", "/api/v1/orders", headers, body)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.2f p99_ms=%.2f non2xx=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad))
end
