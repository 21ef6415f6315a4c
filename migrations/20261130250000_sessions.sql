-- Sessions live in PostgreSQL; Redis only caches them, so a Redis outage or restart signs no one
-- out. A session is known by its handle (the SHA-256 of the cookie's secret id), never by the
-- id itself, like in the cache.
CREATE TABLE sessions (
    handle      text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL,
    customer_id uuid,
    csrf_token  text NOT NULL,
    -- The user's auth_epoch when the session was issued (see users.auth_epoch).
    epoch       bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- Ending every session of a user (deactivation, role change) and purging expired ones.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
