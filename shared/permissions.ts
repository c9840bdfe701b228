// Who may do what: the roles a token can carry, the permissions each route names, and the one
// table that joins them. The API checks it per route (api/auth.ts), the operations page shows
// only the actions it allows, the README prints it, and the OpenAPI document lists each route's
// permission. A deployment maps its identity provider's role names onto these (AUTH_ROLE_MAP).

export const ROLES = ['customer', 'support', 'finance', 'marketing', 'operations'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Every permission a route can require. `*:own` permissions are the customer's: they reach only
 * what belongs to the token's subject (the customer id); another customer's resource answers 404.
 */
export const PERMISSIONS = {
  'checkouts:create': 'start a checkout as oneself (customer id = token subject)',
  'checkouts:read:own': "read one's own checkouts",
  'checkouts:cancel:own': "cancel one's own running checkout",
  'checkouts:read': 'read any checkout',
  'checkouts:cancel': 'cancel any running checkout',
  'refunds:read:own': 'read refunds of one\'s own orders',
  'refunds:request': 'request a refund',
  'refunds:read': 'read any refund',
  'refunds:decide': 'approve or reject a refund waiting for approval (never one\'s own request)',
  'refunds:intervene': 'retry, record as refunded manually, or abandon a refund the provider refused',
  'operations:read': 'list runs on the operations page',
  'operations:history': "read a run's history",
  'operations:retry-step': 'retry a refused or stalled step now',
  'mismatches:read': 'read reconciliation mismatches and runs',
  'mismatches:resolve': 'resolve a reconciliation mismatch',
  'reconciliation:run': 'start a reconciliation run',
  'coupons:issue': 'issue coupons and read issuances',
  'campaigns:distribute': 'start, read, pause, resume and cancel campaign distributions',
  'audit:read': 'read the audit log of operator actions',
  'payloads:decode': 'decrypt and encrypt Temporal payloads through the codec server (the Web UI and the CLI show run inputs and results)',
} as const satisfies Record<string, string>;
export type Permission = keyof typeof PERMISSIONS;

/** The one table: what each role may do. */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  customer: ['checkouts:create', 'checkouts:read:own', 'checkouts:cancel:own', 'refunds:read:own'],
  support: ['checkouts:read', 'refunds:request', 'refunds:read', 'operations:read'],
  finance: ['checkouts:read', 'refunds:read', 'refunds:decide', 'refunds:intervene', 'operations:read', 'mismatches:read'],
  marketing: ['coupons:issue', 'campaigns:distribute'],
  operations: [
    'checkouts:read',
    'checkouts:cancel',
    'refunds:read',
    'operations:read',
    'operations:history',
    'operations:retry-step',
    'mismatches:read',
    'mismatches:resolve',
    'reconciliation:run',
    'audit:read',
    'payloads:decode',
  ],
};

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Everything the roles allow, together. */
export function permissionsOf(roles: readonly Role[]): Set<Permission> {
  return new Set(roles.flatMap((role) => ROLE_PERMISSIONS[role]));
}

/** Who is calling, as the verified token says. */
export interface Principal {
  /** The token's `sub`: for a customer, their customer id; for staff, their account. */
  subject: string;
  roles: Role[];
  permissions: Set<Permission>;
}
