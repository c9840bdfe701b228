-- Refunds (issue 4): refunds are identified by our refund id and are asynchronous at
-- the provider (psp_refunds, held against the capture until decided); orders record
-- refunds once per refund id, inventory restocks once per restock id, loyalty
-- reverses once per reversal id, and a redeemed coupon can be returned.
-- New enum values are placed where schema.prisma lists them; this migration adds them
-- but never uses them (PostgreSQL forbids that in one transaction).
-- CHECK constraints guard the money and stock rules even against a buggy caller.

-- CreateEnum
CREATE TYPE "PaymentRefundStatus" AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED', 'SUCCEEDED_MANUALLY');

-- CreateEnum
CREATE TYPE "PspRefundStatus" AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED');

-- AlterEnum
ALTER TYPE "OrderStatus" ADD VALUE 'PARTIALLY_REFUNDED' BEFORE 'CANCELLED';
ALTER TYPE "OrderStatus" ADD VALUE 'REFUNDED' BEFORE 'CANCELLED';

-- AlterEnum
ALTER TYPE "CouponLockStatus" ADD VALUE 'RETURNED' BEFORE 'UNLOCKED';

-- ---------------------------------------------------------------- orders

-- AlterTable
ALTER TABLE "orders_orders" ADD COLUMN     "refunded_minor" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "orders_orders"
  ADD CONSTRAINT "orders_orders_refunded_minor_check" CHECK ("refunded_minor" >= 0 AND "refunded_minor" <= "total_minor");

-- CreateTable
CREATE TABLE "orders_refunds" (
    "refund_id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "amount_minor" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "orders_refunds_pkey" PRIMARY KEY ("refund_id"),
    CONSTRAINT "orders_refunds_amount_minor_check" CHECK ("amount_minor" > 0)
);

-- CreateIndex
CREATE INDEX "orders_refunds_order_id_idx" ON "orders_refunds"("order_id");

-- AddForeignKey
ALTER TABLE "orders_refunds" ADD CONSTRAINT "orders_refunds_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders_orders"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------- inventory

-- AlterTable
ALTER TABLE "inventory_reservation_lines" ADD COLUMN     "restocked" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "inventory_reservation_lines"
  ADD CONSTRAINT "inventory_reservation_lines_restocked_check" CHECK ("restocked" >= 0 AND "restocked" <= "quantity");

-- CreateTable
CREATE TABLE "inventory_restocks" (
    "restock_id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "inventory_restocks_pkey" PRIMARY KEY ("restock_id")
);

-- CreateTable
CREATE TABLE "inventory_restock_lines" (
    "restock_id" TEXT NOT NULL,
    "sku" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,

    CONSTRAINT "inventory_restock_lines_pkey" PRIMARY KEY ("restock_id","sku"),
    CONSTRAINT "inventory_restock_lines_quantity_check" CHECK ("quantity" > 0)
);

-- CreateIndex
CREATE INDEX "inventory_restocks_order_id_idx" ON "inventory_restocks"("order_id");

-- AddForeignKey
ALTER TABLE "inventory_restock_lines" ADD CONSTRAINT "inventory_restock_lines_restock_id_fkey" FOREIGN KEY ("restock_id") REFERENCES "inventory_restocks"("restock_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------- loyalty

-- One AWARD per order stays unique; REVERSE entries become one per reversal id.
-- DropIndex
DROP INDEX "loyalty_entries_order_id_kind_key";

-- AlterTable
ALTER TABLE "loyalty_entries" ADD COLUMN     "reversal_id" TEXT;

-- Reversals made before this migration reversed the whole award (POST /awards/:orderId/reverse).
UPDATE "loyalty_entries" SET "reversal_id" = 'reverse:' || "order_id" WHERE "kind" = 'REVERSE';

-- CreateIndex
CREATE UNIQUE INDEX "loyalty_entries_reversal_id_key" ON "loyalty_entries"("reversal_id");

-- CreateIndex
CREATE INDEX "loyalty_entries_order_id_kind_idx" ON "loyalty_entries"("order_id", "kind");

-- CreateIndex
CREATE UNIQUE INDEX "loyalty_entries_award_order_id_key" ON "loyalty_entries"("order_id") WHERE "kind" = 'AWARD';

ALTER TABLE "loyalty_entries"
  ADD CONSTRAINT "loyalty_entries_points_check" CHECK (
    ("kind" = 'AWARD' AND "points" >= 0 AND "reversal_id" IS NULL) OR
    ("kind" = 'REVERSE' AND "points" <= 0 AND "reversal_id" IS NOT NULL));

-- ---------------------------------------------------------------- payments

-- refunded_minor used to include refunds still at the provider; those move to refund_pending_minor.
-- AlterTable
ALTER TABLE "payments_payments" ADD COLUMN     "refund_pending_minor" INTEGER NOT NULL DEFAULT 0;

-- AlterTable: refunds are keyed by our refund id; earlier refunds (keyed by order and
-- Idempotency-Key) keep their row under a derived id. Those the provider confirmed
-- succeeded; the others were still at the provider and stay PENDING (held).
ALTER TABLE "payments_refunds"
ADD COLUMN     "refund_id" TEXT,
ADD COLUMN     "attempt" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "failure_reason" TEXT,
ADD COLUMN     "manual_by" TEXT,
ADD COLUMN     "manual_reference" TEXT,
ADD COLUMN     "status" "PaymentRefundStatus" NOT NULL DEFAULT 'PENDING';

UPDATE "payments_refunds"
   SET "refund_id" = 'legacy:' || "order_id" || ':' || "refund_key",
       "status" = CASE WHEN "psp_refund_id" IS NULL THEN 'PENDING'::"PaymentRefundStatus" ELSE 'SUCCEEDED'::"PaymentRefundStatus" END;

UPDATE "payments_payments" p
   SET "refund_pending_minor" = r.pending, "refunded_minor" = p."refunded_minor" - r.pending
  FROM (SELECT "order_id", SUM("amount_minor")::INTEGER AS pending
          FROM "payments_refunds" WHERE "status" = 'PENDING' GROUP BY "order_id") r
 WHERE r."order_id" = p."order_id";

ALTER TABLE "payments_refunds" DROP CONSTRAINT "payments_refunds_pkey",
DROP COLUMN "refund_key",
ALTER COLUMN "refund_id" SET NOT NULL,
ADD CONSTRAINT "payments_refunds_pkey" PRIMARY KEY ("refund_id");

-- CreateIndex
CREATE INDEX "payments_refunds_order_id_idx" ON "payments_refunds"("order_id");

ALTER TABLE "payments_payments"
  ADD CONSTRAINT "payments_payments_refunds_check" CHECK (
    "refunded_minor" >= 0 AND "refund_pending_minor" >= 0 AND "refunded_minor" + "refund_pending_minor" <= "captured_minor");

ALTER TABLE "payments_refunds"
  ADD CONSTRAINT "payments_refunds_amount_minor_check" CHECK ("amount_minor" > 0),
  ADD CONSTRAINT "payments_refunds_attempt_check" CHECK ("attempt" >= 1),
  ADD CONSTRAINT "payments_refunds_manual_check" CHECK ("status" <> 'SUCCEEDED_MANUALLY' OR "manual_reference" IS NOT NULL);

-- ---------------------------------------------------------------- payment-provider simulator

-- AlterTable
ALTER TABLE "psp_payments" ADD COLUMN     "refund_pending_minor" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "psp_payments"
  ADD CONSTRAINT "psp_payments_refunds_check" CHECK (
    "refunded_minor" >= 0 AND "refund_pending_minor" >= 0 AND "refunded_minor" + "refund_pending_minor" <= "captured_minor"),
  ADD CONSTRAINT "psp_payments_captured_minor_check" CHECK ("captured_minor" >= 0 AND "captured_minor" <= "amount_minor");

-- CreateTable
CREATE TABLE "psp_refunds" (
    "id" TEXT NOT NULL,
    "payment_id" TEXT NOT NULL,
    "reference" TEXT NOT NULL,
    "request_key" TEXT NOT NULL,
    "amount_minor" INTEGER NOT NULL,
    "status" "PspRefundStatus" NOT NULL DEFAULT 'PENDING',
    "failure_reason" TEXT,
    "decide_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "psp_refunds_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "psp_refunds_amount_minor_check" CHECK ("amount_minor" > 0)
);

-- CreateIndex
CREATE INDEX "psp_refunds_reference_idx" ON "psp_refunds"("reference");

-- CreateIndex
CREATE INDEX "psp_refunds_decide_at_idx" ON "psp_refunds"("decide_at");

-- CreateIndex
CREATE UNIQUE INDEX "psp_refunds_payment_id_request_key_key" ON "psp_refunds"("payment_id", "request_key");

-- AddForeignKey
ALTER TABLE "psp_refunds" ADD CONSTRAINT "psp_refunds_payment_id_fkey" FOREIGN KEY ("payment_id") REFERENCES "psp_payments"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
