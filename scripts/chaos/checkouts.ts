// Checkouts through the API, as customers make them: every test card, with and without coupons,
// some POSTed twice, some cancelled by the customer a moment after they started. Each is
// followed until it is PAID or CANCELLED (or the deadline passes), its outcome read through the
// API; paid orders are handed on to the refund driver.
import type { Client } from '@temporalio/client';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import { ChaosApi, errorCode, sleep } from './api.ts';
import { CARDS, CURRENCY, type CheckoutPlan } from './fixtures.ts';
import { waitForClose } from './runs.ts';

export interface PaidOrder {
  orderId: string;
  customerId: string;
  totalMinor: number;
  lines: { sku: string; quantity: number }[];
}

export interface CheckoutTally {
  started: number;
  refusedAtStart: Record<string, number>;
  outcomes: Record<string, number>;
  cancelsAccepted: number;
  cancelsRefused: Record<string, number>;
  repeatsSameCheckout: number;
  repeatsDifferent: number;
  unfinished: string[];
}

export function newCheckoutTally(): CheckoutTally {
  return { started: 0, refusedAtStart: {}, outcomes: {}, cancelsAccepted: 0, cancelsRefused: {}, repeatsSameCheckout: 0, repeatsDifferent: 0, unfinished: [] };
}

const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);

export async function driveCheckout(
  api: ChaosApi,
  client: Client,
  plan: CheckoutPlan,
  { deadline, tally, onPaid }: { deadline: number; tally: CheckoutTally; onPaid: (order: PaidOrder) => void },
): Promise<void> {
  const customer: [role: 'customer', subject: string] = ['customer', plan.customerId];
  const body = {
    customerId: plan.customerId,
    currency: CURRENCY,
    lines: plan.lines,
    ...(plan.couponCode ? { couponCode: plan.couponCode } : {}),
    paymentMethod: { type: 'card', number: CARDS[plan.card] },
  };
  const post = () => api.call('POST', '/checkouts', customer, { body, headers: { 'idempotency-key': plan.key }, giveUpAfterMs: deadline - Date.now() });
  const started = await post();
  if (started.status !== 202) {
    bump(tally.refusedAtStart, `${started.status} ${errorCode(started) ?? ''}`.trim());
    return;
  }
  tally.started += 1;
  const checkoutId = checkoutWorkflowId(plan.key);
  if (plan.repeatPost) {
    const again = await post();
    if (again.status === 202 && again.body.checkoutId === checkoutId) tally.repeatsSameCheckout += 1;
    else tally.repeatsDifferent += 1;
  }
  if (plan.cancelAfterMs !== undefined) {
    await sleep(plan.cancelAfterMs);
    const cancel = await api.call('POST', `/checkouts/${checkoutId}/cancel`, customer, { body: { reason: 'changed my mind' }, giveUpAfterMs: 60_000 });
    if (cancel.status === 200) tally.cancelsAccepted += 1;
    else bump(tally.cancelsRefused, `${cancel.status} ${errorCode(cancel) ?? ''}`.trim());
  }

  if (!(await waitForClose(client, checkoutId, deadline))) {
    tally.unfinished.push(`${checkoutId} (still running)`);
    return;
  }
  // what the customer sees, once it is over
  for (;;) {
    const view = await api.call('GET', `/checkouts/${checkoutId}`, customer, { giveUpAfterMs: 30_000 });
    if (view.status === 200) {
      const status = view.body.status as string;
      bump(tally.outcomes, status);
      if (status === 'PAID') {
        onPaid({ orderId: orderIdFor(plan.key), customerId: plan.customerId, totalMinor: view.body.result?.totalMinor ?? 0, lines: plan.lines });
      }
      return;
    }
    if (Date.now() > deadline) {
      tally.unfinished.push(`${checkoutId} (GET answered ${view.status})`);
      return;
    }
    await sleep(2_000);
  }
}
