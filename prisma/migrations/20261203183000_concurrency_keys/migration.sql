-- Concurrency keys. A job may carry a key; its kind may say how many jobs of one key run at once
-- (src/jobs/sql/claim-limited.ts). `concurrency_order` numbers the jobs of such kinds, with a key
-- or without, in the order their submissions were written, from a sequence of its own: jobs of
-- other kinds take no number. Both columns are NULL for them, which costs a catalog change only
-- (no row is rewritten).
ALTER TABLE "job" ADD COLUMN "concurrency_key" TEXT,
ADD COLUMN "concurrency_order" BIGINT;

CREATE SEQUENCE "job_concurrency_order_seq" AS BIGINT;

-- The claim of such a kind finds each key's first pending jobs and counts its wip ones through
-- this index, and its jobs without a key in submission order (key NULL). Jobs of other kinds are
-- not in it, so their inserts, claims and completions add no entry to it. It names queue_state
-- (1 pending, 2 wip), not the status, as the queue's other indexes do since the cheaper_job
-- migration: an index that named the status would make every retrieve a non-HOT update.
CREATE INDEX "job_concurrency_key_idx" ON "job"("kind", "concurrency_key", "queue_state", "concurrency_order")
WHERE concurrency_order IS NOT NULL AND queue_state IN (1, 2);
