-- The provider's vault: the simulator exchanges a card number for an opaque
-- payment-method token, and this is the only table that ever holds the number. A real
-- provider keeps it in an HSM-backed store. One row per Idempotency-Key, so a repeated
-- tokenisation returns the same token without the number passing through idempotency_records.

-- CreateTable
CREATE TABLE "psp_payment_methods" (
    "id" TEXT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "card_number" TEXT NOT NULL,
    "brand" TEXT NOT NULL,
    "last4" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "psp_payment_methods_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "psp_payment_methods_idempotency_key_key" ON "psp_payment_methods"("idempotency_key");
