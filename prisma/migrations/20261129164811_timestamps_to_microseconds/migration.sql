-- Millisecond timestamps rounded now() up to half a millisecond: a job added with run_at = now()
-- could be "not yet due" for a claim that ran within that half millisecond, and then wait for
-- the next poll. Microseconds (PostgreSQL's native precision) remove the gap.
-- AlterTable
ALTER TABLE "job" ALTER COLUMN "run_at" SET DATA TYPE TIMESTAMPTZ(6),
ALTER COLUMN "created_at" SET DATA TYPE TIMESTAMPTZ(6),
ALTER COLUMN "last_updated" SET DATA TYPE TIMESTAMPTZ(6),
ALTER COLUMN "completed_on" SET DATA TYPE TIMESTAMPTZ(6),
ALTER COLUMN "retrieved_at" SET DATA TYPE TIMESTAMPTZ(6);
