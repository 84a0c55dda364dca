-- Schedules (issue 19): recurring jobs from a cron expression in a time zone.
CREATE TYPE "schedule_catch_up" AS ENUM ('skip', 'one', 'all');

CREATE TABLE "schedule" (
    "id" UUID NOT NULL,
    "owner" TEXT NOT NULL DEFAULT '',
    "name" TEXT,
    "declared" BOOLEAN NOT NULL DEFAULT false,
    "kind" TEXT NOT NULL,
    "input" JSONB NOT NULL,
    "cron" TEXT NOT NULL,
    "time_zone" TEXT NOT NULL DEFAULT 'UTC',
    "catch_up" "schedule_catch_up" NOT NULL DEFAULT 'one',
    "catch_up_limit" INTEGER NOT NULL DEFAULT 10,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "last_fire_at" TIMESTAMPTZ(6),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT now(),
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT now(),

    CONSTRAINT "schedule_pkey" PRIMARY KEY ("id")
);

-- A kind's declared schedules are found again, at every start, by kind and name.
CREATE UNIQUE INDEX "schedule_declared_key" ON "schedule"("kind", "name") WHERE declared;
CREATE INDEX "schedule_owner_idx" ON "schedule"("owner", "created_at");

-- One row per tick that made a job. Its primary key is what makes a tick fire once however many
-- schedulers run: each inserts the tick with ON CONFLICT DO NOTHING, and only the one whose row
-- went in inserts the job, in the same statement. Kept out of the job table, whose every index
-- costs an entry per transition of every job.
CREATE TABLE "schedule_tick" (
    "schedule_id" UUID NOT NULL,
    "fire_time" TIMESTAMPTZ(6) NOT NULL,
    "job_id" UUID NOT NULL,

    CONSTRAINT "schedule_tick_pkey" PRIMARY KEY ("schedule_id", "fire_time")
);

ALTER TABLE "schedule_tick" ADD CONSTRAINT "schedule_tick_schedule_id_fkey" FOREIGN KEY ("schedule_id") REFERENCES "schedule"("id") ON DELETE CASCADE ON UPDATE CASCADE;
