// The simulator's test cards (services/psp/cards.ts) and how a test turns one into the
// payment-method token everything past the provider's vault carries instead of the number.
import { randomUUID } from 'node:crypto';
import type { PaymentMethod } from '../../shared/checkout.ts';
import { authFor } from './service-keys.ts';
import { TEST_CARD_NUMBERS as CARDS } from '../../services/psp/cards.ts';

export { CARDS };

/**
 * Exchanges a card number for a token at the simulator (POST /v1/payment_methods), as the API
 * does before a checkout starts. Throws with the answer's status and body when refused.
 */
export async function tokeniseCard(pspUrl: string, number: string, idempotencyKey = `test-${randomUUID()}`): Promise<PaymentMethod> {
  const response = await fetch(new URL('/v1/payment_methods', pspUrl), {
    method: 'POST',
    headers: { ...authFor('psp'), 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify({ type: 'card', card: { number } }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 200 && response.status !== 201) {
    throw new Error(`tokenising a card failed: ${response.status} ${text}`);
  }
  const body = JSON.parse(text) as { id: string; card: Pick<PaymentMethod, 'brand' | 'last4'> };
  return { token: body.id, brand: body.card.brand, last4: body.card.last4 };
}
