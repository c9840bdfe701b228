-- Provider notifications received by the API (POST /webhooks/psp), one row per event id.
-- CreateTable
CREATE TABLE "webhook_events" (
    "event_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "psp_payment_id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "received_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "signaled_at" TIMESTAMP(3),
    "signal_outcome" TEXT,

    CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("event_id")
);

-- CreateIndex
CREATE INDEX "webhook_events_order_id_idx" ON "webhook_events"("order_id");
