-- CreateTable
CREATE TABLE "coupon_distribution_recipients" (
    "distribution_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "customer_id" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "coupon_distribution_recipients_pkey" PRIMARY KEY ("distribution_id","position")
);

-- CreateIndex
CREATE UNIQUE INDEX "coupon_distribution_recipients_distribution_id_customer_id_key" ON "coupon_distribution_recipients"("distribution_id", "customer_id");
