-- Fair share between owners (issue 18, item 5; src/jobs/sql/claim.ts). The claim walks the owners
-- with pending jobs, one index probe each, and takes each owner's share of a batch in its own
-- order (priority, then age). So the claim index leads with the owner: one entry per pending job,
-- as before. It names queue_state, never the status, so that retrieves stay HOT (see the
-- cheaper_job migration).
DROP INDEX "job_pending_claim_idx";
CREATE INDEX "job_pending_claim_idx" ON "job"("owner", "priority" DESC, "run_at", "id") WHERE (queue_state = 1);
