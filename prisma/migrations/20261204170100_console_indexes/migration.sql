-- The operator console (issue 20) finds jobs by kind and by owner, newest first (src/jobs/sql/console.ts).
-- A claim and a completion change queue_state, an indexed column, so neither is a HOT update, and
-- a non-HOT update adds an entry to EVERY index of the table whose condition the new row version
-- meets, even one on columns that did not change. An index on (kind, id) over every job would so
-- take three entries per job (insert, claim, completion) for a console query. These hold only
-- settled jobs (queue_state NULL: completed, retrieved, waiting; 3 failed; 4 cancelled): a job
-- takes one entry, when it is settled, and none while it is pending or running; a retrieve stays
-- HOT. The console finds pending and running jobs through the queue's own partial indexes.
-- The id after the column keeps each kind's or owner's jobs in creation order (ids are UUIDv7),
-- so a page is a walk of the index that stops after the page.
CREATE INDEX "job_kind_idx" ON "job"("kind", "id") WHERE queue_state IS NULL OR queue_state > 2;

-- Without API keys every job's owner is '' and the index would only repeat the primary key: it
-- holds only jobs of an owner, so an open service pays nothing for it.
CREATE INDEX "job_owner_idx" ON "job"("owner", "id") WHERE owner <> '' AND (queue_state IS NULL OR queue_state > 2);
