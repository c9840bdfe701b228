import { randomUUID } from 'node:crypto';

/** Random ids with a type prefix (`psp_…`, `txn_…`, `evt_…`), as a real provider's would be. */
export const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '')}`;
