// The provider's vault: a card number is exchanged once for an opaque payment-method token
// (`pm_…`), and from then on only the token travels; payments look the number up here.
// psp_payment_methods is the only table that ever holds a card number, so this route keeps its
// idempotency in that table (one row per Idempotency-Key) instead of the shared middleware, which
// would store a hash of the body, number included, in idempotency_records. Error messages name
// the field, never the number.
import type { Db } from '../../lib/db.ts';
import { HttpError, invalidRequest, notFound } from '../../lib/http-errors.ts';
import type { PspPaymentMethod } from '../../generated/prisma/client.ts';
import { PAYMENT_METHOD_TOKEN } from '../../shared/payments.ts';
import { cardBehaviour, cardBrand } from './cards.ts';
import { newId } from './ids.ts';

export type PaymentMethodView = ReturnType<typeof toView>;

/** `created` is false when this Idempotency-Key already tokenised this number (same token again). */
export async function tokeniseCard(db: Db, idempotencyKey: string, number: string): Promise<{ created: boolean; paymentMethod: PaymentMethodView }> {
  if (!cardBehaviour(number)) throw invalidRequest("not one of the simulator's test card numbers", 'card.number');

  const id = newId('pm');
  const inserted = await db.$executeRaw`
    INSERT INTO psp_payment_methods (id, idempotency_key, card_number, brand, last4, created_at)
    VALUES (${id}, ${idempotencyKey}, ${number}, ${cardBrand(number)}, ${number.slice(-4)}, now())
    ON CONFLICT (idempotency_key) DO NOTHING`;
  const stored = await db.pspPaymentMethod.findUniqueOrThrow({ where: { idempotencyKey } });
  if (inserted === 0 && stored.cardNumber !== number) {
    throw new HttpError(422, 'idempotency_key_reused', `Idempotency-Key "${idempotencyKey}" was already used for a different card`);
  }
  return { created: inserted === 1, paymentMethod: toView(stored) };
}

export async function getPaymentMethod(db: Db, id: string): Promise<PaymentMethodView> {
  const stored = await db.pspPaymentMethod.findUnique({ where: { id } });
  if (!stored) throw notFound(`no payment method ${id}`);
  return toView(stored);
}

/** The card behind a token, for charging it; an unknown token is the caller's mistake (400). */
export async function cardForToken(db: Db, token: string): Promise<{ number: string; last4: string }> {
  const stored = PAYMENT_METHOD_TOKEN.test(token) ? await db.pspPaymentMethod.findUnique({ where: { id: token } }) : null;
  if (!stored) throw invalidRequest(`no payment method ${token}`, 'paymentMethod');
  return { number: stored.cardNumber, last4: stored.last4 };
}

function toView(stored: PspPaymentMethod) {
  return {
    id: stored.id,
    type: 'card' as const,
    card: { brand: stored.brand, last4: stored.last4 },
    createdAt: stored.createdAt.toISOString(),
  };
}
