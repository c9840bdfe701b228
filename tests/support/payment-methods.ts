// The provider's payment-method vault without a provider: for the API tests that run no services.
// Answers as createPaymentMethodClient does against the simulator (its test cards, one token per
// Idempotency-Key, the same refusals); tests of the real client start the simulator.
import { randomBytes } from 'node:crypto';
import {
  cardKeyReused,
  cardRefused,
  pspUnavailable,
  unknownPaymentMethod,
  type PaymentMethodClient,
} from '../../api/payment-methods.ts';
import { cardBehaviour, cardBrand } from '../../services/psp/cards.ts';
import type { PaymentMethod } from '../../shared/checkout.ts';

export interface SimulatedPaymentMethods extends PaymentMethodClient {
  /** A token for `number` as if the client had tokenised it at the provider itself. */
  issue(number: string): PaymentMethod;
  /** Calls made so far, without the numbers: `tokenise <key>` or `lookup <token>`. */
  readonly calls: string[];
}

export function simulatedPaymentMethods(): SimulatedPaymentMethods {
  const byKey = new Map<string, { number: string; method: PaymentMethod }>();
  const byToken = new Map<string, PaymentMethod>();
  const calls: string[] = [];
  const issue = (number: string): PaymentMethod => {
    const method: PaymentMethod = { token: `pm_${randomBytes(12).toString('hex')}`, brand: cardBrand(number), last4: number.slice(-4) };
    byToken.set(method.token, method);
    return method;
  };
  return {
    calls,
    issue,
    async tokenise(idempotencyKey, number) {
      calls.push(`tokenise ${idempotencyKey}`);
      if (!cardBehaviour(number)) throw cardRefused();
      const earlier = byKey.get(idempotencyKey);
      if (earlier && earlier.number !== number) throw cardKeyReused(idempotencyKey);
      const method = earlier?.method ?? issue(number);
      byKey.set(idempotencyKey, { number, method });
      return method;
    },
    async lookup(token) {
      calls.push(`lookup ${token}`);
      const method = byToken.get(token);
      if (!method) throw unknownPaymentMethod(token);
      return method;
    },
  };
}

/** A provider that cannot be reached: every call is the 503 the real client answers then. */
export function unreachablePaymentMethods(): PaymentMethodClient {
  const refuse = async (): Promise<never> => {
    throw pspUnavailable('the payment provider is unreachable');
  };
  return { tokenise: refuse, lookup: refuse };
}
