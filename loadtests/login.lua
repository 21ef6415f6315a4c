-- wrk script: POST /api/v1/auth/login with the demo cashier (Argon2id verify per request).
wrk.method = "POST"
wrk.path = "/api/v1/auth/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"cashier@till.local","password":"cashier-pass-1"}'
