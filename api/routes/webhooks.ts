// POST /webhooks/psp: the provider's payment notifications. A delivery is believed only with a
// valid, fresh signature; it is recorded once per event id, and only then answered 2xx, so the
// provider keeps retrying until we have it. The owning checkout is then nudged with a signal —
// a nudge only: the checkout asks the provider itself, so a failed signal loses nothing.
// Refund events (`refund.*`) nudge the Refund workflow named by their reference, our refund id.
import express, { type Request, type Response } from 'express';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { HttpError, invalidRequest, parse } from '../../lib/http-errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { webhookEvents } from '../../lib/metrics.ts';
import { checkoutWorkflowIdForOrder } from '../../shared/checkout.ts';
import { paymentEventSignal, type PspEventType } from '../../shared/payments.ts';
import { refundEventSignal, refundRequestIdFromRefundId } from '../../shared/refunds.ts';
import { callTemporal, errorMessage } from '../temporal.ts';
import type { RouteDeclarer } from '../route.ts';
import { SIGNATURE_HEADER, verifySignature } from '../webhook-signature.ts';

export interface WebhookRoutesDeps {
  client: Client;
  db: Db;
  /** Every secret currently accepted (more than one while rotating). */
  secrets: readonly string[];
  toleranceSeconds: number;
  temporalTimeoutMs: number;
  log?: (message: string) => void;
}

const webhookLog = createLogger('api');
const defaultLog = (message: string) => webhookLog.warn(message);

/** How nudging the checkout (or, for refund events, the refund) went, recorded with the event. */
export type SignalOutcome = 'signaled' | 'no_running_checkout' | 'no_running_refund' | 'signal_failed' | 'unknown_event_type';

/** Refund events go to the Refund workflow whose id is the event's reference (our refund id). */
const REFUND_EVENT_TYPES = ['refund.succeeded', 'refund.failed'] as const;

const EVENT_TYPES = ['payment.authorized', 'payment.declined', 'payment.captured', 'payment.voided', 'payment.refunded'] as const satisfies readonly PspEventType[];

const eventSchema = z.object({
  id: z.string().min(1).max(200),
  // unknown types are recorded (and answered 2xx) but signal nothing: a provider may add types
  type: z.string().min(1).max(100),
  data: z.object({
    paymentId: z.string().min(1).max(200),
    reference: z.string().min(1).max(200),
  }),
});

const received = z.object({
  received: z.literal(true),
  eventId: z.string(),
  duplicate: z.literal(true).optional(),
  signalOutcome: z.enum(['signaled', 'no_running_checkout', 'no_running_refund', 'signal_failed', 'unknown_event_type']).optional(),
});

/** The provider's deliveries are small; the signature is checked over these exact bytes. */
const readRawBody = express.raw({ type: () => true, limit: '64kb' });

/**
 * POST /webhooks/psp is public: the provider has no token, its signature is its credential.
 * The route declares no JSON body, so nothing parses the bytes before the signature is checked.
 */
export function webhookRoutes(route: RouteDeclarer, deps: WebhookRoutesDeps): void {
  const log = deps.log ?? defaultLog;

  route(
    {
      method: 'post',
      path: '/webhooks/psp',
      summary: "The payment provider's notifications (JSON `{id, type, data: {paymentId, reference}}`), believed only with a valid, fresh signature",
      tag: 'webhooks',
      permissions: 'public',
      headers: {
        [SIGNATURE_HEADER]: {
          description: 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>"> with a shared webhook secret',
          required: true,
          schema: z.string().max(1_000),
        },
      },
      responses: { 200: { description: 'Recorded (or a duplicate of an event already recorded)', schema: received } },
    },
    async ({ req, res }) => {
      const rawBody = await rawBodyOf(req, res);
      const verdict = verifySignature({
        header: req.get(SIGNATURE_HEADER),
        rawBody,
        secrets: deps.secrets,
        toleranceSeconds: deps.toleranceSeconds,
      });
      if (!verdict.ok) {
        log(`webhook rejected (${verdict.code}: ${verdict.reason}), event ${eventIdOf(rawBody) ?? 'unparseable'}`);
        webhookEvents.inc({ outcome: verdict.code });
        throw new HttpError(verdict.status, verdict.code, `webhook rejected: ${verdict.reason}`);
      }

      let event: z.infer<typeof eventSchema>;
      let json: unknown;
      try {
        json = JSON.parse(rawBody.toString('utf8'));
        event = parse(eventSchema, json);
      } catch (err) {
        webhookEvents.inc({ outcome: 'invalid_request' });
        throw err instanceof SyntaxError ? invalidRequest('webhook body is not valid JSON') : err;
      }
      const orderId = event.data.reference;

      // Recorded before anything else happens and before we answer: this is what makes a 2xx safe.
      const inserted = await deps.db.$executeRaw`
        INSERT INTO webhook_events (event_id, type, psp_payment_id, order_id, payload, received_at)
        VALUES (${event.id}, ${event.type}, ${event.data.paymentId}, ${orderId}, ${JSON.stringify(json)}::jsonb, now())
        ON CONFLICT (event_id) DO NOTHING`;
      if (inserted === 0) {
        webhookEvents.inc({ outcome: 'duplicate' });
        res.status(200).json({ received: true, eventId: event.id, duplicate: true });
        return;
      }

      const signalOutcome = isRefundType(event.type)
        ? await nudgeRefund(deps, event.id, event.type, event.data.reference, log)
        : await nudgeCheckout(deps, event.id, event.type, event.data.paymentId, orderId, log);
      try {
        await deps.db.webhookEvent.update({ where: { eventId: event.id }, data: { signaledAt: new Date(), signalOutcome } });
      } catch (err) {
        // The event itself is recorded; only the note of how the nudge went is missing.
        log(`could not record the signal outcome of event ${event.id}: ${errorMessage(err)}`);
      }
      webhookEvents.inc({ outcome: signalOutcome });
      res.status(200).json({ received: true, eventId: event.id, signalOutcome });
    },
  );
}

/** The request's exact bytes, whatever its content type (an empty body is zero bytes). */
async function rawBodyOf(req: Request, res: Response): Promise<Buffer> {
  await new Promise<void>((resolve, reject) => readRawBody(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

async function nudgeCheckout(
  deps: WebhookRoutesDeps,
  eventId: string,
  type: string,
  pspPaymentId: string,
  orderId: string,
  log: (message: string) => void,
): Promise<SignalOutcome> {
  const workflowId = checkoutWorkflowIdForOrder(orderId);
  if (!isKnownType(type)) return 'unknown_event_type';
  if (workflowId === null) return 'no_running_checkout';
  try {
    await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      deps.client.workflow.getHandle(workflowId).signal(paymentEventSignal, { eventId, type, pspPaymentId, orderId }),
    );
    return 'signaled';
  } catch (err) {
    // Closed or never started: the event stays recorded for reconciliation.
    if (err instanceof WorkflowNotFoundError) return 'no_running_checkout';
    log(`event ${eventId} recorded, but signalling ${workflowId} failed (${errorMessage(err)}); the checkout will ask the provider itself`);
    return 'signal_failed';
  }
}

async function nudgeRefund(
  deps: WebhookRoutesDeps,
  eventId: string,
  type: string,
  refundId: string,
  log: (message: string) => void,
): Promise<SignalOutcome> {
  if (refundRequestIdFromRefundId(refundId) === null) return 'no_running_refund';
  try {
    await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      deps.client.workflow.getHandle(refundId).signal(refundEventSignal, { eventId, type, refundId }),
    );
    return 'signaled';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'no_running_refund';
    log(`event ${eventId} recorded, but signalling ${refundId} failed (${errorMessage(err)}); the refund will ask the provider itself`);
    return 'signal_failed';
  }
}

function isRefundType(type: string): boolean {
  return (REFUND_EVENT_TYPES as readonly string[]).includes(type);
}

function isKnownType(type: string): type is PspEventType {
  return (EVENT_TYPES as readonly string[]).includes(type);
}

/** The event id of a body we could not trust, for the log line only. */
function eventIdOf(rawBody: Buffer): string | null {
  try {
    const id = (JSON.parse(rawBody.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' ? id.slice(0, 200) : null;
  } catch {
    return null;
  }
}
