-- Rate limits (src/jobs/sql/claim-limited.ts). A row per start of a job whose kind has a rate
-- limit: the kind, the bucket's key ('' for the whole kind, or for jobs without a key when the
-- limit is per key), the time the claim that started it took the kind's lock, and the job. The
-- claim counts a bucket's rows of the last interval (the primary key), and deletes the rows that
-- have left every interval (the second index), so the table holds at most the kind's limit per
-- bucket that started a job within its interval. Jobs of other kinds write nothing here.
CREATE TABLE "job_rate_start" (
    "kind" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "started_at" TIMESTAMPTZ(6) NOT NULL,
    "job_id" UUID NOT NULL,

    CONSTRAINT "job_rate_start_pkey" PRIMARY KEY ("kind","key","started_at","job_id")
);

CREATE INDEX "job_rate_start_expiry_idx" ON "job_rate_start"("kind", "started_at");
