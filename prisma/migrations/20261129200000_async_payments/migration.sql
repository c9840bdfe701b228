-- Asynchronous payments: the provider decides later and announces the outcome by
-- signed webhooks (psp_events, psp_deliveries); our payments gain pending states
-- and refunds. New enum values are placed where schema.prisma lists them; this
-- migration adds them but never uses them (PostgreSQL forbids that in one transaction).

-- CreateEnum
CREATE TYPE "PspDeliveryStatus" AS ENUM ('PENDING', 'DELIVERED', 'DROPPED');

-- AlterEnum
ALTER TYPE "PaymentStatus" ADD VALUE 'AUTHORIZATION_PENDING' BEFORE 'AUTHORIZED';
ALTER TYPE "PaymentStatus" ADD VALUE 'CAPTURE_PENDING' BEFORE 'CAPTURED';
ALTER TYPE "PaymentStatus" ADD VALUE 'REFUNDED' AFTER 'VOIDED';

-- AlterEnum
ALTER TYPE "PspPaymentStatus" ADD VALUE 'PENDING' BEFORE 'AUTHORIZED';
ALTER TYPE "PspPaymentStatus" ADD VALUE 'CAPTURE_PENDING' BEFORE 'CAPTURED';
ALTER TYPE "PspPaymentStatus" ADD VALUE 'REFUNDED' AFTER 'VOIDED';

-- AlterEnum
ALTER TYPE "PspTransactionType" ADD VALUE 'REFUND';

-- AlterTable
ALTER TABLE "payments_payments" ADD COLUMN     "refunded_minor" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "psp_payments" ADD COLUMN     "capture_minor" INTEGER,
ADD COLUMN     "captured_minor" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "decide_at" TIMESTAMP(3),
ADD COLUMN     "refunded_minor" INTEGER NOT NULL DEFAULT 0;

-- Payments captured before this migration: their captured amount is in their CAPTURE transactions.
UPDATE "psp_payments" p
   SET "captured_minor" = t.total
  FROM (SELECT "payment_id", SUM("amount_minor")::INTEGER AS total
          FROM "psp_transactions" WHERE "type" = 'CAPTURE' GROUP BY "payment_id") t
 WHERE t."payment_id" = p."id";

-- CreateTable
CREATE TABLE "payments_refunds" (
    "order_id" TEXT NOT NULL,
    "refund_key" TEXT NOT NULL,
    "amount_minor" INTEGER NOT NULL,
    "reason" TEXT NOT NULL,
    "psp_refund_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "payments_refunds_pkey" PRIMARY KEY ("order_id","refund_key")
);

-- CreateTable
CREATE TABLE "psp_events" (
    "id" TEXT NOT NULL,
    "payment_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "psp_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "psp_deliveries" (
    "event_id" TEXT NOT NULL,
    "status" "PspDeliveryStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL,
    "last_error" TEXT,
    "delivered_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "psp_deliveries_pkey" PRIMARY KEY ("event_id")
);

-- CreateTable
CREATE TABLE "psp_webhook_endpoints" (
    "id" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "psp_webhook_endpoints_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "psp_events_payment_id_idx" ON "psp_events"("payment_id");

-- CreateIndex
CREATE INDEX "psp_deliveries_status_next_attempt_at_idx" ON "psp_deliveries"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "payments_payments_updated_at_idx" ON "payments_payments"("updated_at");

-- CreateIndex
CREATE INDEX "psp_payments_decide_at_idx" ON "psp_payments"("decide_at");

-- CreateIndex
CREATE INDEX "psp_transactions_created_at_idx" ON "psp_transactions"("created_at");

-- AddForeignKey
ALTER TABLE "payments_refunds" ADD CONSTRAINT "payments_refunds_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "payments_payments"("order_id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "psp_events" ADD CONSTRAINT "psp_events_payment_id_fkey" FOREIGN KEY ("payment_id") REFERENCES "psp_payments"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "psp_deliveries" ADD CONSTRAINT "psp_deliveries_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "psp_events"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
