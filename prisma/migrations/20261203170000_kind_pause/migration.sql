-- Paused kinds: a row per paused kind, and one named '*' while every kind is paused (no kind can
-- be named so: names start with a letter). Every claim reads this table once, so it stays as
-- small as the number of paused kinds; an empty table costs a claim one index probe per kind.
CREATE TABLE "job_kind_pause" (
    "kind" TEXT NOT NULL,
    "paused_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_kind_pause_pkey" PRIMARY KEY ("kind")
);
