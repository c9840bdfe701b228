-- The API's audit log of operator actions (issue 10): who (the token's subject and roles),
-- what, which run, when, and how it ended. Append-only: a row is inserted as `attempted` and
-- settled once; the trigger refuses deletes and any change to a settled row.

-- CreateEnum
CREATE TYPE "AuditOutcome" AS ENUM ('attempted', 'accepted', 'refused', 'unconfirmed', 'failed');

-- CreateTable
CREATE TABLE "api_audit_log" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "subject" TEXT NOT NULL,
    "roles" JSONB NOT NULL,
    "action" TEXT NOT NULL,
    "workflow_id" TEXT NOT NULL,
    "request" JSONB NOT NULL,
    "outcome" "AuditOutcome" NOT NULL DEFAULT 'attempted',
    "code" TEXT,
    "message" TEXT,
    "settled_at" TIMESTAMP(3),

    CONSTRAINT "api_audit_log_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "api_audit_log_settled_check" CHECK (("outcome" = 'attempted') = ("settled_at" IS NULL))
);

-- CreateIndex
CREATE INDEX "api_audit_log_workflow_id_at_idx" ON "api_audit_log"("workflow_id", "at");

-- CreateIndex
CREATE INDEX "api_audit_log_subject_at_idx" ON "api_audit_log"("subject", "at");

-- CreateIndex
CREATE INDEX "api_audit_log_at_idx" ON "api_audit_log"("at");

-- Append-only: no deletes; an update may only settle an attempted row, and only its outcome,
-- code, message and settled_at.
CREATE FUNCTION "api_audit_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'api_audit_log is append-only: rows are never deleted';
  END IF;
  IF OLD."outcome" <> 'attempted'
     OR NEW."id" <> OLD."id" OR NEW."at" <> OLD."at" OR NEW."subject" <> OLD."subject"
     OR NEW."roles" <> OLD."roles" OR NEW."action" <> OLD."action"
     OR NEW."workflow_id" <> OLD."workflow_id" OR NEW."request" <> OLD."request" THEN
    RAISE EXCEPTION 'api_audit_log is append-only: a row is settled once and never rewritten';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "api_audit_log_append_only"
  BEFORE UPDATE OR DELETE ON "api_audit_log"
  FOR EACH ROW EXECUTE FUNCTION "api_audit_log_append_only"();
