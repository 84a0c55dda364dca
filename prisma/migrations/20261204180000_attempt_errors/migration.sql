-- Every failed attempt of a job, with its error, its time and the worker that held it (issue 20,
-- "A job"). Written by the statement that records the failure (jobs_fail), and by the claim that
-- takes a stale job back (its `stale` branch), so a job that succeeds writes nothing here.
-- No foreign key to job: a key puts referential-integrity triggers on job itself, which every
-- claim, completion and delete of every job would then run (the pruner deletes a job's rows in
-- its own statement instead; src/jobs/sql/prune.ts).
CREATE TABLE "job_attempt_error" (
    "job_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "error" TEXT NOT NULL,
    "failed_at" TIMESTAMPTZ(6) NOT NULL DEFAULT now(),
    "worker" TEXT,

    CONSTRAINT "job_attempt_error_pkey" PRIMARY KEY ("job_id","attempt")
);

-- The console finds jobs by their keys (src/jobs/sql/console.ts). Each index holds only jobs that
-- have that key, so a job without one pays nothing; a job with one takes an entry at its insert and
-- at each non-HOT update (claim, outcome), as it does in every index whose condition it meets.
CREATE INDEX "job_unique_key_idx" ON "job"("unique_key", "id") WHERE unique_key IS NOT NULL;
CREATE INDEX "job_concurrency_key_all_idx" ON "job"("concurrency_key", "id") WHERE concurrency_key IS NOT NULL;
-- No such index for idempotency keys: many clients send one with every request, and each of those
-- jobs would pay it at every write. A filter by idempotency key names its owner (keys are scoped
-- to one) and reads job_owner_idempotency_key_key.
