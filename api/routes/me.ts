// GET /me: who the token says is calling, and what they may do. The operations page shows the
// name and offers only the actions these permissions allow.
import { z } from 'zod';
import { PERMISSIONS, ROLES, type Permission } from '../../shared/permissions.ts';
import type { RouteDeclarer } from '../route.ts';

/** Any permission at all: every authenticated caller who holds a role may ask who they are. */
const ANY_PERMISSION = Object.keys(PERMISSIONS) as Permission[];

const meView = z.object({
  subject: z.string(),
  roles: z.array(z.enum(ROLES)),
  permissions: z.array(z.enum(Object.keys(PERMISSIONS) as [Permission, ...Permission[]])),
});

export function meRoutes(route: RouteDeclarer): void {
  route(
    {
      method: 'get',
      path: '/me',
      summary: "The caller: the token's subject, its roles and the permissions they grant",
      tag: 'me',
      permissions: ANY_PERMISSION,
      query: z.object({}),
      responses: { 200: { description: 'The caller', schema: meView } },
    },
    ({ res, principal }) => {
      const { subject, roles, permissions } = principal!;
      res.json({ subject, roles, permissions: [...permissions].sort() });
    },
  );
}
