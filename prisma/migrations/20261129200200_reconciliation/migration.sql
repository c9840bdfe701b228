-- Reconciliation report: one row per run, one row per difference (id = natural key kind:reference:transaction).
-- CreateEnum
CREATE TYPE "ReconciliationMismatchKind" AS ENUM ('MISSING_OURS', 'MISSING_AT_PROVIDER', 'STATUS_MISMATCH', 'AMOUNT_MISMATCH');

-- CreateEnum
CREATE TYPE "ReconciliationMismatchStatus" AS ENUM ('OPEN', 'AUTO_RESOLVED', 'RESOLVED');

-- CreateTable
CREATE TABLE "reconciliation_runs" (
    "id" TEXT NOT NULL,
    "workflow_id" TEXT NOT NULL,
    "period_start" TIMESTAMP(3) NOT NULL,
    "period_end" TIMESTAMP(3) NOT NULL,
    "boundary_grace_ms" INTEGER NOT NULL,
    "started_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMP(3),
    "examined" INTEGER NOT NULL DEFAULT 0,
    "deferred" INTEGER NOT NULL DEFAULT 0,
    "detected" INTEGER NOT NULL DEFAULT 0,
    "new_mismatches" INTEGER NOT NULL DEFAULT 0,
    "already_known" INTEGER NOT NULL DEFAULT 0,
    "auto_resolved" INTEGER NOT NULL DEFAULT 0,
    "flagged" INTEGER NOT NULL DEFAULT 0,
    "report" JSONB,

    CONSTRAINT "reconciliation_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "reconciliation_mismatches" (
    "id" TEXT NOT NULL,
    "run_id" TEXT NOT NULL,
    "kind" "ReconciliationMismatchKind" NOT NULL,
    "reference" TEXT NOT NULL,
    "psp_payment_id" TEXT,
    "transaction_id" TEXT,
    "details" JSONB NOT NULL,
    "status" "ReconciliationMismatchStatus" NOT NULL DEFAULT 'OPEN',
    "action" TEXT,
    "resolved_by" TEXT,
    "resolution_note" TEXT,
    "resolved_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "reconciliation_mismatches_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "reconciliation_runs_started_at_idx" ON "reconciliation_runs"("started_at");

-- CreateIndex
CREATE INDEX "reconciliation_mismatches_status_idx" ON "reconciliation_mismatches"("status");

-- CreateIndex
CREATE INDEX "reconciliation_mismatches_reference_idx" ON "reconciliation_mismatches"("reference");

-- CreateIndex
CREATE INDEX "reconciliation_mismatches_run_id_idx" ON "reconciliation_mismatches"("run_id");

-- AddForeignKey
ALTER TABLE "reconciliation_mismatches" ADD CONSTRAINT "reconciliation_mismatches_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "reconciliation_runs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

