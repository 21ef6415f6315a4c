-- Accounts hardening.
--
-- 1. A customer record is the login of at most one user. Registration checked this with a read
--    before the insert, which two concurrent registrations with one phone could both pass; the
--    unique index makes the second insert fail instead (NULLs, i.e. staff, are not compared).
CREATE UNIQUE INDEX users_customer_id_key ON users (customer_id);

-- 2. The revocation epoch of a user's credentials. Deactivation and role changes bump it in the
--    same transaction; every session records the epoch it was issued under and stops working
--    once the user's epoch has moved on, so a login racing the change cannot escape it.
ALTER TABLE users ADD COLUMN auth_epoch BIGINT NOT NULL DEFAULT 0;
