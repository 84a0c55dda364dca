-- Live progress: what a running job's handler last reported. Nullable without a default, so
-- adding it rewrites no row and holds the table's lock only for a moment.
ALTER TABLE "job" ADD COLUMN "progress" JSONB;
