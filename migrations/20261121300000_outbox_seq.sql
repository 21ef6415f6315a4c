-- Events get their delivery order when published, not when written: transactions commit out of
-- id order, so subscribers track `seq` (assigned by the single active publisher) to resume
-- without gaps or repeats.
CREATE SEQUENCE outbox_seq;
ALTER TABLE outbox ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX outbox_seq_idx ON outbox (seq) WHERE seq IS NOT NULL;
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE seq IS NULL;
