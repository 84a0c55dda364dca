-- Unique jobs (issue 19): while a job with a unique key is pending or running, another job of the
-- same owner, kind and key is refused, or answered with that job. The database enforces it, so
-- it holds across any number of API processes and library callers.
ALTER TABLE "job" ADD COLUMN "unique_key" TEXT;

-- Partial twice over. Jobs without a unique key (most of them) never enter it, so they pay
-- nothing; a job with one leaves it when it completes, fails or is cancelled, which is what ends
-- the key's hold. It names queue_state (1 pending, 2 wip), not the status, as the queue's other
-- indexes do (cheaper_job migration): completed → retrieved changes no column it names, and
-- stays a HOT update. Only a keyed job's own transitions add entries.
CREATE UNIQUE INDEX "job_unique_key_active_key" ON "job"("owner", "kind", "unique_key")
  WHERE unique_key IS NOT NULL AND queue_state IN (1, 2);
