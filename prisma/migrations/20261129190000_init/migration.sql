-- CreateEnum
CREATE TYPE "OrderStatus" AS ENUM ('PENDING', 'AWAITING_PAYMENT', 'PAID', 'CANCELLED');

-- CreateEnum
CREATE TYPE "ReservationStatus" AS ENUM ('RESERVED', 'COMMITTED', 'RELEASED');

-- CreateEnum
CREATE TYPE "CouponKind" AS ENUM ('FIXED', 'PERCENT');

-- CreateEnum
CREATE TYPE "CouponStatus" AS ENUM ('AVAILABLE', 'LOCKED', 'REDEEMED');

-- CreateEnum
CREATE TYPE "CouponLockStatus" AS ENUM ('LOCKED', 'REDEEMED', 'UNLOCKED');

-- CreateEnum
CREATE TYPE "LoyaltyEntryKind" AS ENUM ('AWARD', 'REVERSE');

-- CreateEnum
CREATE TYPE "PaymentStatus" AS ENUM ('AUTHORIZED', 'DECLINED', 'CAPTURED', 'VOIDED');

-- CreateEnum
CREATE TYPE "PspPaymentStatus" AS ENUM ('AUTHORIZED', 'DECLINED', 'CAPTURED', 'VOIDED');

-- CreateEnum
CREATE TYPE "PspTransactionType" AS ENUM ('AUTHORIZATION', 'CAPTURE', 'VOID');

-- CreateTable
CREATE TABLE "idempotency_records" (
    "scope" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "response_code" INTEGER,
    "response_body" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "idempotency_records_pkey" PRIMARY KEY ("scope","key")
);

-- CreateTable
CREATE TABLE "orders_orders" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "currency" TEXT NOT NULL,
    "subtotal_minor" INTEGER NOT NULL,
    "discount_minor" INTEGER NOT NULL DEFAULT 0,
    "total_minor" INTEGER NOT NULL,
    "coupon_code" TEXT,
    "payment_id" TEXT,
    "status" "OrderStatus" NOT NULL DEFAULT 'PENDING',
    "cancel_reason" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "orders_orders_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "orders_lines" (
    "id" SERIAL NOT NULL,
    "order_id" TEXT NOT NULL,
    "sku" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,
    "unit_price_minor" INTEGER NOT NULL,

    CONSTRAINT "orders_lines_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "orders_status_changes" (
    "id" SERIAL NOT NULL,
    "order_id" TEXT NOT NULL,
    "from_status" "OrderStatus",
    "to_status" "OrderStatus" NOT NULL,
    "reason" TEXT,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "orders_status_changes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "inventory_stock" (
    "sku" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "price_minor" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "on_hand" INTEGER NOT NULL,
    "reserved" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "inventory_stock_pkey" PRIMARY KEY ("sku")
);

-- CreateTable
CREATE TABLE "inventory_reservations" (
    "order_id" TEXT NOT NULL,
    "status" "ReservationStatus" NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "inventory_reservations_pkey" PRIMARY KEY ("order_id")
);

-- CreateTable
CREATE TABLE "inventory_reservation_lines" (
    "order_id" TEXT NOT NULL,
    "sku" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,

    CONSTRAINT "inventory_reservation_lines_pkey" PRIMARY KEY ("order_id","sku")
);

-- CreateTable
CREATE TABLE "coupons_coupons" (
    "code" TEXT NOT NULL,
    "customer_id" TEXT,
    "kind" "CouponKind" NOT NULL,
    "value" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "min_spend_minor" INTEGER NOT NULL DEFAULT 0,
    "valid_until" TIMESTAMP(3),
    "status" "CouponStatus" NOT NULL DEFAULT 'AVAILABLE',
    "locked_by" TEXT,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "coupons_coupons_pkey" PRIMARY KEY ("code")
);

-- CreateTable
CREATE TABLE "coupons_locks" (
    "order_id" TEXT NOT NULL,
    "code" TEXT,
    "status" "CouponLockStatus" NOT NULL,
    "discount_minor" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "coupons_locks_pkey" PRIMARY KEY ("order_id")
);

-- CreateTable
CREATE TABLE "loyalty_accounts" (
    "customer_id" TEXT NOT NULL,
    "points" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "loyalty_accounts_pkey" PRIMARY KEY ("customer_id")
);

-- CreateTable
CREATE TABLE "loyalty_entries" (
    "id" SERIAL NOT NULL,
    "customer_id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "kind" "LoyaltyEntryKind" NOT NULL,
    "points" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "loyalty_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payments_payments" (
    "id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "amount_minor" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "status" "PaymentStatus" NOT NULL,
    "psp_payment_id" TEXT,
    "decline_code" TEXT,
    "captured_minor" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "payments_payments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "psp_payments" (
    "id" TEXT NOT NULL,
    "merchant_reference" TEXT NOT NULL,
    "amount_minor" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "card_last4" TEXT NOT NULL,
    "status" "PspPaymentStatus" NOT NULL,
    "decline_code" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "psp_payments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "psp_transactions" (
    "id" TEXT NOT NULL,
    "payment_id" TEXT NOT NULL,
    "type" "PspTransactionType" NOT NULL,
    "amount_minor" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "psp_transactions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "orders_lines_order_id_sku_key" ON "orders_lines"("order_id", "sku");

-- CreateIndex
CREATE INDEX "orders_status_changes_order_id_idx" ON "orders_status_changes"("order_id");

-- CreateIndex
CREATE UNIQUE INDEX "loyalty_entries_order_id_kind_key" ON "loyalty_entries"("order_id", "kind");

-- CreateIndex
CREATE UNIQUE INDEX "payments_payments_order_id_key" ON "payments_payments"("order_id");

-- CreateIndex
CREATE INDEX "psp_payments_merchant_reference_idx" ON "psp_payments"("merchant_reference");

-- CreateIndex
CREATE INDEX "psp_transactions_payment_id_idx" ON "psp_transactions"("payment_id");

-- AddForeignKey
ALTER TABLE "orders_lines" ADD CONSTRAINT "orders_lines_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders_orders"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "orders_status_changes" ADD CONSTRAINT "orders_status_changes_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders_orders"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "inventory_reservation_lines" ADD CONSTRAINT "inventory_reservation_lines_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "inventory_reservations"("order_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "psp_transactions" ADD CONSTRAINT "psp_transactions_payment_id_fkey" FOREIGN KEY ("payment_id") REFERENCES "psp_payments"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

