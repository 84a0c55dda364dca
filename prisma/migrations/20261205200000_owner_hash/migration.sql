-- With API keys a job's owner is the key's SHA-256 as 64 hex characters, and the queue's two
-- owner-led indexes carried it whole: an entry of the claim index at every insert, of the owner
-- index at every settling, each 64 bytes wider than without keys. They hold a hash of the owner
-- instead, a stored column PostgreSQL derives (which Prisma's schema can name, where an
-- expression index it cannot), and every query that reads them states the owner as well, which
-- decides: two owners whose hashes meet only share a turn of the claim's fair share.
-- hashtext is PostgreSQL's own hash of text, 0.1 µs a row (a hash a client could compute too, of
-- SHA-256, cost 0.7). Four bytes: the claim index's entry is then as narrow as the open
-- service's was with its empty owner, and the row grows by four bytes at its end, which a
-- claim's and a completion's new versions share with the old and do not log again.
-- Adding a stored column rewrites the table, as job_column_order did, under an exclusive lock.
-- Processes of the previous release go on working meanwhile and after, but their claims no
-- longer find an index led by the owner, and scan the pending jobs: replace them promptly.
ALTER TABLE job ADD COLUMN owner_hash integer GENERATED ALWAYS AS (hashtext(owner)) STORED NOT NULL;

DROP INDEX job_pending_claim_idx;
CREATE INDEX job_pending_claim_idx ON job (owner_hash, priority DESC, run_at, id) WHERE queue_state = 1;

DROP INDEX job_owner_idx;
CREATE INDEX job_owner_idx ON job (owner_hash, id) WHERE owner <> '' AND (queue_state IS NULL OR queue_state > 2);
