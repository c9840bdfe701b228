// The load of a chaos run: every planned checkout, refund and issuance started at its time (a
// fraction of the load phase) and followed to its end, with a progress line every 10 s. Refunds
// take the orders the checkouts paid; a partial refund hands its order to the full refund after it.
import type { Client } from '@temporalio/client';
import { ChaosApi, sleep } from './api.ts';
import { driveCheckout, newCheckoutTally, type CheckoutTally, type PaidOrder } from './checkouts.ts';
import type { Plan } from './fixtures.ts';
import { driveIssuance, newIssuanceTally, type IssuanceTally } from './issuances.ts';
import { driveRefundJob, newRefundTally, PaidOrders, type RefundTally } from './refunds.ts';

export interface LoadTallies {
  checkouts: CheckoutTally;
  refunds: RefundTally;
  issuances: IssuanceTally;
}

export interface LoadOptions {
  plan: Plan;
  api: ChaosApi;
  client: Client;
  loadStart: number;
  loadMs: number;
  /** No driver waits for anything past this. */
  deadline: number;
  providerRefusing: () => boolean;
  log: (message: string) => void;
}

/** Starts the load; `ended` resolves once every driver is done (or gave up at the deadline). */
export function startLoad(opts: LoadOptions): { tallies: LoadTallies; ended: Promise<void>; checkoutsEnded: () => number } {
  const { plan, api, client, deadline, log } = opts;
  const tallies: LoadTallies = { checkouts: newCheckoutTally(), refunds: newRefundTally(), issuances: newIssuanceTally() };
  const at = (fraction: number) => sleep(opts.loadStart + fraction * opts.loadMs - Date.now());
  const paid = new PaidOrders();
  let operatorTurn = 0;
  const refundContext = {
    api, client, orders: paid, tally: tallies.refunds, deadline, runId: plan.runId, log,
    providerRefusing: opts.providerRefusing,
    nextOperatorAction: () => (operatorTurn++ % 2 === 0 ? ('retry' as const) : ('refund-manually' as const)),
  };

  const checkoutsDone = Promise.all(
    plan.checkouts.map(async (c) => {
      await at(c.at);
      await driveCheckout(api, client, c, { deadline, tally: tallies.checkouts, onPaid: (order: PaidOrder) => paid.add(order) });
    }),
  ).finally(() => paid.close());
  const issuancesDone = Promise.all(
    plan.issuances.map(async (i) => {
      await at(i.at);
      await driveIssuance(api, i, { deadline, tally: tallies.issuances });
    }),
  );
  let handOver: Promise<PaidOrder | null> | undefined;
  const refundsDone = Promise.all(
    plan.refunds.map((job) => {
      const fromPrevious = handOver;
      let toNext: ((order: PaidOrder | null) => void) | undefined;
      handOver = job.kind === 'partial' ? new Promise((resolve) => (toNext = resolve)) : undefined;
      return (async () => {
        await at(job.at);
        await driveRefundJob(refundContext, job, { fromPrevious, toNext });
      })();
    }),
  );

  const ended = (outcomes: Record<string, number>) => Object.values(outcomes).reduce((a, b) => a + b, 0);
  const { checkouts, refunds, issuances } = tallies;
  const progress = setInterval(() => {
    log(
      `progress: checkouts ${ended(checkouts.outcomes)}/${plan.checkouts.length} ended ${JSON.stringify(checkouts.outcomes)}, ` +
        `refunds ${ended(refunds.outcomes)}/${refunds.requested} requested ended, issuances ${ended(issuances.outcomes)}/${plan.issuances.length} ended`,
    );
  }, 10_000);
  return {
    tallies,
    checkoutsEnded: () => ended(checkouts.outcomes),
    ended: Promise.all([checkoutsDone, refundsDone, issuancesDone]).then(() => {}).finally(() => clearInterval(progress)),
  };
}
