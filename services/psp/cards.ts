// The simulator's test cards (README "psp"): what each number does.
export type CardBehaviour =
  | { outcome: 'approve' }
  /** Approved only after the chaos `lateDecisionMs`: "paid after our timeout". */
  | { outcome: 'approve-late' }
  | { outcome: 'decline'; declineCode: 'card_declined' | 'insufficient_funds' }
  | { outcome: 'timeout' };

export const TEST_CARDS: Record<string, CardBehaviour> = {
  '4242424242424242': { outcome: 'approve' },
  '4000000000000259': { outcome: 'approve-late' },
  '4000000000000002': { outcome: 'decline', declineCode: 'card_declined' },
  '4000000000009995': { outcome: 'decline', declineCode: 'insufficient_funds' },
  '4000000000000119': { outcome: 'timeout' },
};

export function cardBehaviour(number: string): CardBehaviour | undefined {
  return TEST_CARDS[number];
}
