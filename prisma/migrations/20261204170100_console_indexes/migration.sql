-- The operator console (issue 20) finds jobs by kind and by owner, newest first (src/jobs/sql/console.ts).
-- Neither column changes after a job's insert, so each index takes one entry per job, at its
-- insert, and none at a claim, a completion, a retry or a retrieve: those stay HOT updates
-- (cheaper_job migration). The id after the column keeps each kind's or owner's jobs in creation
-- order (ids are UUIDv7), so a page is a walk of the index that stops after the page.
CREATE INDEX "job_kind_idx" ON "job"("kind", "id");

-- Without API keys every job's owner is '' and the index would only repeat the primary key: it
-- holds only jobs of an owner, so an open service pays nothing for it.
CREATE INDEX "job_owner_idx" ON "job"("owner", "id") WHERE owner <> '';
