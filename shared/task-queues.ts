// Workflow-safe: no Node or Prisma imports in shared/.

/** Task queue served by the worker in workers/main.ts. */
export const CHECKOUT_TASK_QUEUE = 'checkout';
