-- Coupon campaigns and issuance (issue 5): campaigns with a total quota, a
-- per-customer limit and a validity window; two-phase quota reservations keyed by
-- the caller's request id; grants that put one coupon into a customer's wallet,
-- exactly once per request id.
-- CHECK constraints guard the quota even against a buggy caller: a campaign's
-- reserved + confirmed never exceed its total quota, and no counter goes negative.

-- CreateEnum
CREATE TYPE "CouponQuotaReservationStatus" AS ENUM ('RESERVED', 'CONFIRMED', 'RELEASED');

-- AlterTable
ALTER TABLE "coupons_coupons" ADD COLUMN     "campaign_id" TEXT;

-- CreateTable
CREATE TABLE "coupons_campaigns" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "total_quota" INTEGER NOT NULL,
    "per_customer_limit" INTEGER NOT NULL,
    "valid_from" TIMESTAMP(3) NOT NULL,
    "valid_until" TIMESTAMP(3) NOT NULL,
    "kind" "CouponKind" NOT NULL,
    "value" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "min_spend_minor" INTEGER NOT NULL DEFAULT 0,
    "reserved" INTEGER NOT NULL DEFAULT 0,
    "confirmed" INTEGER NOT NULL DEFAULT 0,
    "released" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "coupons_campaigns_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "coupons_campaign_customers" (
    "campaign_id" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "reserved" INTEGER NOT NULL DEFAULT 0,
    "confirmed" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "coupons_campaign_customers_pkey" PRIMARY KEY ("campaign_id","customer_id")
);

-- CreateTable
CREATE TABLE "coupons_quota_reservations" (
    "request_id" TEXT NOT NULL,
    "campaign_id" TEXT,
    "customer_id" TEXT,
    "status" "CouponQuotaReservationStatus" NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "coupons_quota_reservations_pkey" PRIMARY KEY ("request_id")
);

-- CreateTable
CREATE TABLE "coupons_grants" (
    "request_id" TEXT NOT NULL,
    "campaign_id" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "coupon_code" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "coupons_grants_pkey" PRIMARY KEY ("request_id")
);

-- CreateIndex
CREATE INDEX "coupons_quota_reservations_campaign_id_customer_id_idx" ON "coupons_quota_reservations"("campaign_id", "customer_id");

-- CreateIndex
CREATE UNIQUE INDEX "coupons_grants_coupon_code_key" ON "coupons_grants"("coupon_code");

-- CreateIndex
CREATE INDEX "coupons_grants_campaign_id_idx" ON "coupons_grants"("campaign_id");

-- CreateIndex
CREATE INDEX "coupons_coupons_customer_id_idx" ON "coupons_coupons"("customer_id");

-- AddForeignKey
ALTER TABLE "coupons_coupons" ADD CONSTRAINT "coupons_coupons_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "coupons_campaigns"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "coupons_campaign_customers" ADD CONSTRAINT "coupons_campaign_customers_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "coupons_campaigns"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "coupons_grants" ADD CONSTRAINT "coupons_grants_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "coupons_campaigns"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "coupons_grants" ADD CONSTRAINT "coupons_grants_coupon_code_fkey" FOREIGN KEY ("coupon_code") REFERENCES "coupons_coupons"("code") ON DELETE RESTRICT ON UPDATE CASCADE;

-- ---------------------------------------------------------------- quota guards

ALTER TABLE "coupons_campaigns"
  ADD CONSTRAINT "coupons_campaigns_quota_check" CHECK (
    "reserved" >= 0 AND "confirmed" >= 0 AND "released" >= 0 AND "reserved" + "confirmed" <= "total_quota"),
  ADD CONSTRAINT "coupons_campaigns_limits_check" CHECK ("total_quota" >= 0 AND "per_customer_limit" >= 1),
  ADD CONSTRAINT "coupons_campaigns_window_check" CHECK ("valid_from" < "valid_until"),
  ADD CONSTRAINT "coupons_campaigns_value_check" CHECK (
    "value" > 0 AND ("kind" <> 'PERCENT' OR "value" <= 100) AND "min_spend_minor" >= 0);

ALTER TABLE "coupons_campaign_customers"
  ADD CONSTRAINT "coupons_campaign_customers_counts_check" CHECK ("reserved" >= 0 AND "confirmed" >= 0);

-- Only a tombstone (released before it was reserved) lacks its campaign and customer.
ALTER TABLE "coupons_quota_reservations"
  ADD CONSTRAINT "coupons_quota_reservations_owner_check" CHECK (
    "status" = 'RELEASED' OR ("campaign_id" IS NOT NULL AND "customer_id" IS NOT NULL));
