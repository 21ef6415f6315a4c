#!/usr/bin/env python3
"""Checks against a running local cluster (scripts/cluster.sh): N Till instances behind nginx.

    eval "$(scripts/cluster.sh env)"; export ${!TILL_CLUSTER_@}
    python3 scripts/lib/cluster_check.py [CHECK ...]        (default: every check, in order)

Each check prints one line (ok / FAIL / skip) and the run ends with "cluster: N passed, N failed".
Uses the standard library and `websockets` (Debian: python3-websockets; scripts/test.d/40-cluster.sh
installs it when missing), and contacts only loopback addresses.

Environment: TILL_CLUSTER_URL (nginx), TILL_CLUSTER_INSTANCES (space-separated instance URLs),
TILL_CLUSTER_ADMIN_EMAIL / _PASSWORD, TILL_CLUSTER_SCRIPT (path of cluster.sh, for kill/restart),
RATE_LIMIT_ANON_PER_MIN (the limit the cluster was started with), TILL_CHECK_LOAD_THREADS (4).

Checks that need parts of the API not yet on this branch (orders, the WebSocket) look for their routes
first and skip with a note when they are missing, so they start running as soon as those land.
"""

import asyncio
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import websockets
import websockets.exceptions

NGINX = os.environ["TILL_CLUSTER_URL"].rstrip("/")
INSTANCES = [u.rstrip("/") for u in os.environ["TILL_CLUSTER_INSTANCES"].split()]
ADMIN_EMAIL = os.environ["TILL_CLUSTER_ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["TILL_CLUSTER_ADMIN_PASSWORD"]
CLUSTER_SH = os.environ.get(
    "TILL_CLUSTER_SCRIPT", os.path.join(os.path.dirname(__file__), "..", "cluster.sh")
)
ANON_LIMIT = int(os.environ.get("RATE_LIMIT_ANON_PER_MIN", "600"))
LOAD_THREADS = int(os.environ.get("TILL_CHECK_LOAD_THREADS", "4"))


class Skip(Exception):
    pass


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def code(self):
        return ((self.json or {}).get("error") or {}).get("code")

    def __repr__(self):
        return f"<{self.status} {self.raw[:200]!r}>"


def request(base, method, path, body=None, headers=None, timeout=10):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def login(base, email=ADMIN_EMAIL, password=ADMIN_PASSWORD):
    r = request(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    expect(r.status == 200, f"login via {base}: {r}")
    cookie = None
    for c in r.all("Set-Cookie"):
        name_value = c.split(";", 1)[0]
        if name_value.startswith("till_session="):
            cookie = name_value
    expect(cookie, f"login set no till_session cookie: {r.headers}")
    return {"token": r.json["access_token"], "csrf": r.json["csrf_token"], "cookie": cookie}


def cluster_sh(*args):
    subprocess.run(["bash", CLUSTER_SH, *args], check=True, stdout=sys.stderr)


def route_exists(method, path):
    """True when the API has the route (anything but a 404 `not_found` for an anonymous call).
    Asked of an instance directly: nginx may answer for itself."""
    r = request(INSTANCES[0], method, path, body={} if method != "GET" else None)
    return not (r.status == 404 and r.code() == "not_found")


class Load:
    """Steady GET load through nginx on persistent connections; counts every failure."""

    def __init__(self, base, path, headers, threads=LOAD_THREADS, pause=0.01):
        self.u = urllib.parse.urlsplit(base)
        self.path, self.headers, self.pause = path, headers, pause
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        conn = None
        while not self.stop_flag.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.u.hostname, self.u.port, timeout=15)
                conn.request("GET", self.path, headers=self.headers)
                r = conn.getresponse()
                body = r.read()
                if r.status == 200:
                    with self.lock:
                        self.ok += 1
                else:
                    with self.lock:
                        self.failures.append(f"{r.status} {body[:120]!r}")
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(20)

    def verdict(self, what):
        expect(self.ok > 0, f"{what}: no request succeeded")
        expect(
            not self.failures,
            f"{what}: {len(self.failures)} failed of {self.ok + len(self.failures)}: {self.failures[:5]}",
        )
        return f"{self.ok} GETs, 0 failed"


# ------------------------------------------------------------------------------------------- checks

STATE = {}


def admin():
    if "admin" not in STATE:
        STATE["admin"] = login(NGINX)
    return STATE["admin"]


def check_balancing():
    """nginx spreads requests over every instance."""
    seen = set()
    for _ in range(10 * len(INSTANCES)):
        r = request(NGINX, "GET", "/health")
        expect(r.status == 200, f"/health via nginx: {r}")
        seen.add(r.json["instance"])
        if len(seen) == len(INSTANCES):
            break
    want = {f"web-{i + 1}" for i in range(len(INSTANCES))}
    expect(seen == want, f"nginx reached {sorted(seen)}, expected {sorted(want)}")
    return f"reached {', '.join(sorted(seen))}"


def check_session_everywhere():
    """A login made through one instance (token and cookie) is honoured by all, and so is its logout."""
    s = admin()
    targets = INSTANCES + [NGINX] * len(INSTANCES)
    for base in targets:
        r = request(base, "GET", "/api/v1/auth/me", headers=bearer(s["token"]))
        expect(r.status == 200 and r.json["user"]["email"] == ADMIN_EMAIL, f"bearer on {base}: {r}")
        r = request(base, "GET", "/api/v1/auth/me", headers={"Cookie": s["cookie"]})
        expect(r.status == 200 and r.json["user"]["email"] == ADMIN_EMAIL, f"cookie on {base}: {r}")
    # A session made directly on instance 1: its CSRF token is known to instance 2, and its logout on
    # the last instance ends it on every instance (Redis-backed sessions and revocation).
    other = login(INSTANCES[0])
    r = request(INSTANCES[1 % len(INSTANCES)], "POST", "/api/v1/auth/logout", body={},
                headers={"Cookie": other["cookie"]})
    expect(r.status == 403 and r.code() == "csrf_failed", f"cookie POST without CSRF: {r}")
    r = request(INSTANCES[-1], "POST", "/api/v1/auth/logout", body={},
                headers={"Cookie": other["cookie"], "X-CSRF-Token": other["csrf"]})
    expect(r.status == 204, f"logout with cookie + CSRF on {INSTANCES[-1]}: {r}")
    for base in INSTANCES + [NGINX]:
        r = request(base, "GET", "/api/v1/auth/me", headers=bearer(other["token"]))
        expect(r.status == 401, f"token after logout on {base}: {r}")
        r = request(base, "GET", "/api/v1/auth/me", headers={"Cookie": other["cookie"]})
        expect(r.status == 401, f"cookie after logout on {base}: {r}")
    return f"bearer + cookie on {len(INSTANCES)} instances and nginx; CSRF and logout shared"


def check_rate_limit_shared():
    """The anonymous per-IP limit counts requests on all instances together (X-Forwarded-For via nginx)."""
    ip = f"198.51.100.{random.randint(1, 254)}"
    targets = INSTANCES + [NGINX]
    for k in range(1, ANON_LIMIT + 4):
        base = targets[k % len(targets)]
        r = request(base, "GET", "/api/v1/auth/me", headers={"X-Forwarded-For": ip})
        if k <= ANON_LIMIT:
            expect(r.status == 401, f"request {k} of {ANON_LIMIT} on {base} was limited: {r}")
            remaining = r.header("RateLimit-Remaining")
            expect(remaining == str(ANON_LIMIT - k),
                   f"request {k} on {base}: RateLimit-Remaining {remaining}, expected {ANON_LIMIT - k}")
        else:
            expect(r.status == 429 and r.code() == "rate_limited", f"request {k} on {base}: {r}")
            expect(r.header("Retry-After"), f"429 without Retry-After on {base}")
    # Another client (another forwarded IP) is not affected.
    r = request(NGINX, "GET", "/api/v1/auth/me", headers={"X-Forwarded-For": "203.0.113.9"})
    expect(r.status == 401, f"another IP was limited: {r}")
    return f"limit {ANON_LIMIT}/min shared by {len(INSTANCES)} instances and nginx"


def check_nginx_edges():
    """Request ids pass through nginx, nginx makes one when missing, and its own errors use Till's shape."""
    rid = f"cluster-check-{uuid.uuid4().hex[:8]}"
    r = request(NGINX, "GET", "/health/liveness", headers={"X-Request-Id": rid})
    expect(r.status == 200 and r.header("X-Request-Id") == rid, f"request id not echoed: {r.headers}")
    r = request(NGINX, "GET", "/health/liveness")
    made = r.header("X-Request-Id") or ""
    expect(1 <= len(made) <= 64, f"no request id made: {r.headers}")
    # A 2 MiB Content-Length is refused from the headers alone (no body is sent, so nginx closing
    # early cannot break the pipe under us).
    u = urllib.parse.urlsplit(NGINX)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall((f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {u.hostname}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {2 * 1024 * 1024}\r\n"
                      f"X-Request-Id: {rid}\r\n\r\n").encode())
        resp = http.client.HTTPResponse(sock, method="POST")
        resp.begin()
        r = Resp(resp.status, resp.getheaders(), resp.read())
    expect(r.status == 413 and r.code() == "payload_too_large", f"2 MiB body: {r}")
    expect(r.json["error"]["request_id"] == rid, f"413 without the request id: {r}")
    r = request(NGINX, "GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    expect(r.status == 200, f"/metrics from loopback: {r.status}")
    # The UI's entry page from disk, or Till's own answer when there is none; never a bare 403.
    r = request(NGINX, "GET", "/", headers={"Accept": "text/html"})
    expect(r.status == 200 or (r.status == 404 and r.code() == "not_found"), f"GET / via nginx: {r}")
    if r.status == 200:
        expect(r.header("Content-Security-Policy"), f"GET / without the security headers: {r.headers}")
    return "X-Request-Id kept and made; 413 in Till's error shape; / served"


def check_kill_one_under_load():
    """SIGKILL of one instance under steady GET load: nginx retries on the others, nothing fails."""
    victim = len(INSTANCES) // 2 + 1
    with Load(NGINX, "/api/v1/auth/me", bearer(admin()["token"])) as load:
        time.sleep(1.5)
        cluster_sh("kill", str(victim))
        time.sleep(3)
        cluster_sh("start", str(victim))
        time.sleep(1.5)
    return f"web-{victim} killed and restarted: " + load.verdict("kill under load")


def check_rolling_restart_under_load():
    """SIGTERM each instance in turn (it drains, stops, starts again) under steady GET load: nothing fails."""
    drained = []
    with Load(NGINX, "/api/v1/auth/me", bearer(admin()["token"])) as load:
        time.sleep(1)
        for i, base in enumerate(INSTANCES, start=1):
            p = subprocess.Popen(["bash", CLUSTER_SH, "restart", str(i)], stdout=sys.stderr)
            saw_draining = False
            while p.poll() is None:
                try:
                    r = request(base, "GET", "/health/readiness", timeout=2)
                    if r.status == 503 and (r.json or {}).get("reason") == "draining":
                        saw_draining = True
                except OSError:
                    pass
                time.sleep(0.05)
            expect(p.returncode == 0, f"cluster.sh restart {i} failed")
            drained.append(saw_draining)
        time.sleep(1)
    expect(all(drained), f"readiness did not report draining for every instance: {drained}")
    return "readiness 503 while draining; " + load.verdict("rolling restart")


def check_login_limited_at_nginx():
    """nginx's limit_req on /auth/login answers 429 in Till's error shape (runs last: it uses the zone up)."""
    statuses = []
    nginx_429 = None
    # The balancer's flood guard (120/min, burst 40 by default) sits above Till's own
    # failed-login limits, so it takes a few dozen attempts to meet it.
    for i in range(80):
        r = request(NGINX, "POST", "/api/v1/auth/login",
                    {"email": f"nobody{i}@cluster.local", "password": "wrong-password-1"})
        statuses.append(r.status)
        if r.status == 429 and r.header("RateLimit-Limit") is None:
            nginx_429 = r
            break
    expect(nginx_429 is not None, f"nginx never limited logins: {statuses}")
    expect(nginx_429.code() == "rate_limited" and nginx_429.header("Retry-After"),
           f"nginx 429 shape: {nginx_429} {nginx_429.headers}")
    return f"429 after {len(statuses) - 1} attempts"


# --- checks that need routes from other issues; they skip until those land --------------------------

def check_orders_no_duplicates_under_rolling_restart():
    """Orders created through nginx with Idempotency-Key during a rolling restart: none lost, none doubled."""
    if not route_exists("POST", "/api/v1/orders"):
        raise Skip("POST /api/v1/orders is not on this branch yet")
    tok = admin()["token"]
    stock, orders = 1000, 60
    sku = f"CLUSTER-{uuid.uuid4().hex[:10]}"
    r = request(NGINX, "POST", "/api/v1/products",
                {"sku": sku, "name": f"Cluster check {sku}", "price_cents": 250, "tax_rate_bp": 0,
                 "track_stock": True}, headers=bearer(tok))
    expect(r.status == 201, f"create product: {r}")
    product = r.json.get("product", r.json)
    pid = product["id"]
    r = request(NGINX, "POST", "/api/v1/inventory/adjustments",
                {"product_id": pid, "delta": stock, "reason": "received"}, headers=bearer(tok))
    expect(r.status == 201, f"stock adjustment: {r}")

    results = {}
    lock = threading.Lock()

    def place(key):
        body = {"fulfilment": "in_store", "lines": [{"product_id": pid, "quantity": 1}]}
        for _ in range(50):
            try:
                r = request(NGINX, "POST", "/api/v1/orders", body,
                            headers={**bearer(tok), "Idempotency-Key": key}, timeout=15)
            except OSError:
                time.sleep(0.2)
                continue
            if r.status == 201:
                with lock:
                    results[key] = r.json.get("order", r.json)["id"]
                return
            # 5xx, 409 idempotency_key_in_use: the client retries with the same key, as documented.
            if r.status >= 500 or r.code() == "idempotency_key_in_use":
                time.sleep(0.2)
                continue
            raise AssertionError(f"order {key}: {r}")

    keys = [str(uuid.uuid4()) for _ in range(orders)]
    errors = []

    def worker(chunk):
        for k in chunk:
            try:
                place(k)
            except Exception as e:  # noqa: BLE001 — reported below
                errors.append(repr(e))
            time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(keys[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for i in range(1, len(INSTANCES) + 1):
        cluster_sh("restart", str(i))
    for t in threads:
        t.join(120)
    expect(not errors, f"order errors: {errors[:3]}")
    expect(len(results) == orders, f"{orders - len(results)} orders never succeeded")
    expect(len(set(results.values())) == orders, "two keys produced the same order")
    r = request(NGINX, "GET", f"/api/v1/products/{pid}", headers=bearer(tok))
    expect(r.status == 200, f"read product: {r}")
    on_hand = r.json.get("product", r.json)["stock_on_hand"]
    expect(on_hand == stock - orders, f"stock {on_hand}, expected {stock - orders}: duplicate orders?")
    return f"{orders} orders, {orders} distinct, stock exact"


def ws_url(base, path):
    """`http://host:port` + path → `ws://host:port/path`."""
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(("wss" if u.scheme == "https" else "ws", u.netloc, "", "", "")) + path


async def ws_connect(base, path):
    """An open WebSocket (the library answers pings), or AssertionError when the upgrade is refused."""
    try:
        return await websockets.connect(ws_url(base, path), open_timeout=10)
    except websockets.exceptions.InvalidHandshake as e:
        raise AssertionError(f"upgrade refused: {e}") from e


async def ws_wait_for(ws, wanted, seconds):
    """Reads text frames until `wanted(event)` holds; False when `seconds` pass first."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        try:
            text = await asyncio.wait_for(ws.recv(), left)
        except asyncio.TimeoutError:
            return False
        if isinstance(text, str) and wanted(json.loads(text)):
            return True


def check_websocket_across_instances():
    """An order created on one instance reaches WebSocket subscribers on the others and through nginx."""
    if not route_exists("GET", "/api/v1/ws"):
        raise Skip("/api/v1/ws is not on this branch yet")
    if not route_exists("POST", "/api/v1/orders"):
        raise Skip("needs POST /api/v1/orders to raise events")
    tok = admin()["token"]
    return asyncio.run(websocket_across_instances(tok))


async def websocket_across_instances(tok):
    q = urllib.parse.quote(tok)
    subscribers = [await ws_connect(b, f"/api/v1/ws?access_token={q}") for b in INSTANCES[1:] + [NGINX]]
    try:
        sku = f"WS-{uuid.uuid4().hex[:10]}"
        # Blocking HTTP calls run off the event loop, which keeps the subscribers read meanwhile.
        r = await asyncio.to_thread(
            request, INSTANCES[0], "POST", "/api/v1/products",
            {"sku": sku, "name": f"WS check {sku}", "price_cents": 100, "tax_rate_bp": 0, "track_stock": False},
            headers=bearer(tok))
        expect(r.status == 201, f"create product: {r}")
        pid = r.json.get("product", r.json)["id"]
        r = await asyncio.to_thread(
            request, INSTANCES[0], "POST", "/api/v1/orders",
            {"fulfilment": "in_store", "lines": [{"product_id": pid, "quantity": 1}]},
            headers={**bearer(tok), "Idempotency-Key": str(uuid.uuid4())})
        expect(r.status == 201, f"create order: {r}")
        oid = r.json.get("order", r.json)["id"]
        for s in subscribers:
            got = await ws_wait_for(
                s, lambda ev: ev.get("type") == "order.created" and ev.get("order", {}).get("id") == oid, 5)
            expect(got, "no order.created event within 5 s")
    finally:
        for s in subscribers:
            await s.close()
    return f"order.created reached {len(subscribers)} subscribers on other instances and via nginx"


CHECKS = [
    check_balancing,
    check_session_everywhere,
    check_rate_limit_shared,
    check_nginx_edges,
    check_kill_one_under_load,
    check_rolling_restart_under_load,
    check_orders_no_duplicates_under_rolling_restart,
    check_websocket_across_instances,
    check_login_limited_at_nginx,
]


def main(argv):
    by_name = {c.__name__.removeprefix("check_"): c for c in CHECKS}
    chosen = [by_name[a] for a in argv] if argv else CHECKS
    unknown = [a for a in argv if a not in by_name]
    if unknown:
        print(f"unknown checks: {unknown}; known: {sorted(by_name)}", file=sys.stderr)
        return 2
    passed = failed = skipped = 0
    for check in chosen:
        name = check.__name__.removeprefix("check_")
        started = time.time()
        try:
            detail = check()
            passed += 1
            print(f"ok    {name} ({time.time() - started:.1f}s): {detail}", flush=True)
        except Skip as e:
            skipped += 1
            print(f"skip  {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 — every failure is reported, the run goes on
            failed += 1
            print(f"FAIL  {name} ({time.time() - started:.1f}s): {e}", flush=True)
    print(f"cluster: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
