// The simulator's test cards (README "psp"): what each number does.
import type { CardBrand } from '../../shared/payments.ts';

export type CardBehaviour =
  | { outcome: 'approve' }
  /** Approved only after the chaos `lateDecisionMs`: "paid after our timeout". */
  | { outcome: 'approve-late' }
  | { outcome: 'decline'; declineCode: 'card_declined' | 'insufficient_funds' }
  | { outcome: 'timeout' };

/** The test card numbers by what they do: what tests, the bench and the chaos harness pay with. */
export const TEST_CARD_NUMBERS = {
  approve: '4242424242424242',
  approveLate: '4000000000000259',
  declined: '4000000000000002',
  insufficientFunds: '4000000000009995',
  timeout: '4000000000000119',
} as const;

export const TEST_CARDS: Record<string, CardBehaviour> = {
  [TEST_CARD_NUMBERS.approve]: { outcome: 'approve' },
  [TEST_CARD_NUMBERS.approveLate]: { outcome: 'approve-late' },
  [TEST_CARD_NUMBERS.declined]: { outcome: 'decline', declineCode: 'card_declined' },
  [TEST_CARD_NUMBERS.insufficientFunds]: { outcome: 'decline', declineCode: 'insufficient_funds' },
  [TEST_CARD_NUMBERS.timeout]: { outcome: 'timeout' },
};

export function cardBehaviour(number: string): CardBehaviour | undefined {
  return TEST_CARDS[number];
}

/** The card's network from its leading digits, as a provider reports it with a token. */
export function cardBrand(number: string): CardBrand {
  const prefix = (digits: number) => Number(number.slice(0, digits));
  if (number.startsWith('4')) return 'visa';
  if ((prefix(2) >= 51 && prefix(2) <= 55) || (prefix(4) >= 2221 && prefix(4) <= 2720)) return 'mastercard';
  if (prefix(2) === 34 || prefix(2) === 37) return 'amex';
  if (prefix(4) === 6011 || prefix(2) === 65) return 'discover';
  return 'unknown';
}
