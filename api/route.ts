// The one way an API route is declared: its method and path, the permission it needs, the zod
// schemas of its path parameters, query and body, its body limit and its answers. `route()`
// turns a declaration into Express middleware in a fixed order — authenticate, check the
// permission, then parse the body (an anonymous caller never gets a large body parsed) and
// validate — and records it in the RouteTable that /openapi.json is generated from, so the
// contract others read is the one the routes enforce.
import express, { type Request, type Response, type Router } from 'express';
import type { z } from 'zod';
import { invalidRequest, parse } from '../lib/http-errors.ts';
import type { Permission, Principal } from '../shared/permissions.ts';
import { authenticate, principalOf, requirePermission, type TokenVerifier } from './auth.ts';

export type Method = 'get' | 'post' | 'put' | 'delete';

export interface ResponseSpec {
  description: string;
  /** The JSON body's schema; omitted for the shared error shape (added by the OpenAPI generator). */
  schema?: z.ZodType;
}

export interface HeaderSpec {
  description: string;
  required: boolean;
  schema: z.ZodType;
}

export interface RouteSpec<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: Method;
  /** The Express path, e.g. `/checkouts/:id`. */
  path: string;
  /** One line for the OpenAPI document. */
  summary: string;
  /** The OpenAPI tag (one per route file: checkouts, refunds, operations, ...). */
  tag: string;
  /** Any one of these permits the call; `public` needs no token (health, the signed webhook, the contract). */
  permissions: readonly Permission[] | 'public';
  params?: P;
  query?: Q;
  body?: B;
  /** Request headers the handler reads (e.g. Idempotency-Key), for the contract. */
  headers?: Record<string, HeaderSpec>;
  /** JSON body limit (default 16kb); only routes that need more say so. */
  bodyLimit?: string;
  /** The successful answers (2xx); refusals use the shared error shape and are documented by the generator. */
  responses: Record<number, ResponseSpec>;
}

/** What a handler gets: the parsed inputs and, on protected routes, who is calling. */
export interface RouteContext<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  req: Request;
  res: Response;
  /** Null only on public routes. */
  principal: Principal | null;
  params: z.output<P>;
  query: z.output<Q>;
  body: z.output<B>;
}

/** Every route the app declared, in order: the source of /openapi.json. */
export class RouteTable {
  readonly routes: RouteSpec[] = [];
}

export const DEFAULT_BODY_LIMIT = '16kb';

export interface RouteDeclarer {
  <P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType>(
    spec: RouteSpec<P, Q, B>,
    handler: (ctx: RouteContext<P, Q, B>) => Promise<void> | void,
  ): void;
}

/** A `route()` function that adds declared routes to `router` and records them in `table`. */
export function declareRoutes(router: Router, table: RouteTable, verifier: TokenVerifier): RouteDeclarer {
  const authenticated = authenticate(verifier);
  return (spec, handler) => {
    table.routes.push(spec as unknown as RouteSpec);
    const guards =
      spec.permissions === 'public' ? [] : [authenticated, requirePermission(...spec.permissions)];
    const body = spec.body ? [express.json({ limit: spec.bodyLimit ?? DEFAULT_BODY_LIMIT })] : [];
    router[spec.method](spec.path, ...guards, ...body, async (req: Request, res: Response) => {
      refuseNul(req.params, 'params');
      refuseNul(req.query, 'query');
      refuseNul(req.body, 'body');
      await handler({
        req,
        res,
        principal: spec.permissions === 'public' ? null : principalOf(res),
        params: (spec.params ? parse(spec.params, req.params) : req.params) as never,
        query: (spec.query ? parse(spec.query, req.query) : req.query) as never,
        // a request without a JSON body is validated as {}
        body: (spec.body ? parse(spec.body, req.body ?? {}) : undefined) as never,
      });
    });
  };
}

/**
 * PostgreSQL cannot store U+0000 in text or jsonb, and no field of ours has a use for it: refused
 * at the door, naming the field, before any schema, run or audit row sees it.
 */
function refuseNul(value: unknown, where: string, path: string[] = []): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) {
      const field = path.join('.') || where;
      throw invalidRequest(`${field}: must not contain the NUL character`, field);
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => refuseNul(item, where, [...path, String(i)]));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      refuseNul(key, where, [...path, key]);
      refuseNul(item, where, [...path, key]);
    }
  }
}
