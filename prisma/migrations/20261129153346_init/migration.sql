-- CreateEnum
CREATE TYPE "job_status" AS ENUM ('pending', 'wip', 'completed', 'failed', 'retrieved', 'cancelled');

-- CreateTable
CREATE TABLE "job" (
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'add',
    "num1" DECIMAL NOT NULL,
    "num2" DECIMAL NOT NULL,
    "result" DECIMAL,
    "status" "job_status" NOT NULL DEFAULT 'pending',
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL,
    "last_error" TEXT,
    "run_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "locked_by" TEXT,
    "idempotency_key" TEXT,
    "owner" TEXT NOT NULL DEFAULT '',
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_updated" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_on" TIMESTAMPTZ(3),
    "retrieved_at" TIMESTAMPTZ(3),

    CONSTRAINT "job_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "job_pending_claim_idx" ON "job"("priority" DESC, "run_at", "id") WHERE ("status" = 'pending');

-- CreateIndex
CREATE INDEX "job_wip_stale_idx" ON "job"("last_updated") WHERE ("status" = 'wip');

-- CreateIndex
CREATE INDEX "job_status_id_idx" ON "job"("status", "id");

-- CreateIndex
CREATE UNIQUE INDEX "job_owner_idempotency_key_key" ON "job"("owner", "idempotency_key");
