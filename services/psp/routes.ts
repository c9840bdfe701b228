import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { invalidRequest, parse, parseBody } from '../../lib/http-errors.ts';
import { IDEMPOTENCY_HEADER } from '../common/idempotency.ts';
import type { ServiceRouter } from '../common/app.ts';
import { accepted, created, ok } from '../common/reply.ts';
import { currency, id, minorAmount, positiveAmount } from '../common/schemas.ts';
import { PAYMENT_METHOD_TOKEN } from '../../shared/payments.ts';
import { type Chaos, chaosSchema } from './chaos.ts';
import { getPaymentMethod, tokeniseCard } from './payment-methods.ts';
import { capturePayment, createPayment, findPayments, findPaymentsOf, getPayment, MAX_LOOKUP_REFERENCES, voidPayment } from './payments.ts';
import { getRefund, requestRefund } from './refunds.ts';
import { MAX_REPORT_REFERENCES, settlementReport } from './settlements.ts';
import { getWebhookEndpoint, setWebhookEndpoint } from './webhooks.ts';

const paymentMethodSchema = z.object({
  type: z.literal('card'),
  card: z.object({ number: z.string().regex(/^\d{12,19}$/, 'must be 12 to 19 digits') }),
});
const paymentMethodParams = z.object({ id });
const authorizeSchema = z.object({
  amountMinor: minorAmount,
  currency,
  reference: id,
  paymentMethod: z.string().regex(PAYMENT_METHOD_TOKEN, 'must be a payment-method token (pm_…) from POST /v1/payment_methods'),
});
const captureSchema = z.object({ amountMinor: minorAmount });
const refundSchema = z.object({ amountMinor: positiveAmount, reference: id });
const refundParams = z.object({ refundId: id });
const paymentParams = z.object({ id });
const listQuery = z.object({ reference: id });
const instant = z.iso.datetime({ offset: true }).transform((value) => new Date(value));
const settlementQuery = z.object({
  from: instant,
  to: instant,
  /** The `nextCursor` of the page before: the last reference it covered. */
  after: id.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_REPORT_REFERENCES).default(MAX_REPORT_REFERENCES),
});
const lookupSchema = z.object({ references: z.array(id).min(1).max(MAX_LOOKUP_REFERENCES) });
const endpointSchema = z.object({ url: z.url({ protocol: /^https?$/ }) });

export function pspRoutes(db: Db, options: { timeoutCardMs: number; chaos: Chaos; faultInjection: boolean }) {
  const { chaos } = options;
  return (r: ServiceRouter) => {
    // Idempotent in the vault itself (payment-methods.ts): the shared middleware would keep a hash of the card number.
    r.postRepeatable('/v1/payment_methods', async (req) => {
      const key = req.get(IDEMPOTENCY_HEADER)?.trim();
      if (!key) throw invalidRequest(`missing ${IDEMPOTENCY_HEADER} header`, IDEMPOTENCY_HEADER);
      if (key.length > 255) throw invalidRequest(`${IDEMPOTENCY_HEADER} is longer than 255 characters`, IDEMPOTENCY_HEADER);
      const { card } = parseBody(paymentMethodSchema, req.body);
      const tokenised = await tokeniseCard(db, key, card.number);
      return tokenised.created ? created(tokenised.paymentMethod) : ok(tokenised.paymentMethod);
    });
    r.get('/v1/payment_methods/:id', async (req) => ok(await getPaymentMethod(db, parse(paymentMethodParams, req.params).id)));

    r.post('/v1/payments', async (req) =>
      accepted(await createPayment(db, parseBody(authorizeSchema, req.body), options.timeoutCardMs, chaos.current)),
    );
    r.post('/v1/payments/:id/capture', async (req) => {
      const { amountMinor } = parseBody(captureSchema, req.body);
      const capture = await capturePayment(db, parse(paymentParams, req.params).id, amountMinor, chaos.current);
      return capture.accepted ? accepted(capture.payment) : ok(capture.payment);
    });
    r.post('/v1/payments/:id/void', async (req) => ok(await voidPayment(db, parse(paymentParams, req.params).id, chaos.current)));
    r.post('/v1/payments/:id/refunds', async (req) => {
      const request = parseBody(refundSchema, req.body);
      // the idempotency middleware has made sure the key is there
      const requestKey = req.get(IDEMPOTENCY_HEADER)!.trim();
      const refund = await requestRefund(db, parse(paymentParams, req.params).id, request, requestKey, chaos.current);
      return refund.created ? accepted(refund.refund) : ok(refund.refund);
    });
    r.get('/v1/refunds/:refundId', async (req) => ok(await getRefund(db, parse(refundParams, req.params).refundId)));
    r.get('/v1/payments/:id', async (req) => ok(await getPayment(db, parse(paymentParams, req.params).id)));
    r.get('/v1/payments', async (req) => ok(await findPayments(db, parse(listQuery, req.query).reference)));
    // a read, so safe to repeat; a POST only because 500 references do not fit in a URL
    r.postRepeatable('/v1/payments/lookup', async (req) => ok({ payments: await findPaymentsOf(db, parseBody(lookupSchema, req.body).references) }));

    r.get('/v1/settlements', async (req) => {
      const { from, to, after, limit } = parse(settlementQuery, req.query);
      if (from > to) throw invalidRequest('from must not be after to', 'from');
      return ok(await settlementReport(db, from, to, { after, limit }));
    });

    r.get('/v1/webhook-endpoint', async () => ok(await getWebhookEndpoint(db)));
    r.put('/v1/webhook-endpoint', async (req) => ok(await setWebhookEndpoint(db, parseBody(endpointSchema, req.body).url)));

    // A debug switch, not part of a provider's API: absent (404) unless fault injection is on.
    if (!options.faultInjection) return;
    r.get('/v1/chaos', async () => ok(chaos.shown));
    r.put('/v1/chaos', async (req) => {
      chaos.set(parseBody(chaosSchema, req.body));
      return ok(chaos.shown);
    });
    r.delete('/v1/chaos', async () => {
      chaos.clear();
      return ok(chaos.shown);
    });
  };
}
