// GET /openapi.json: the API's contract, generated from the routes' own declarations
// (api/openapi.ts). Public, like any published contract; it names no secret.
import { z } from 'zod';
import { openApiDocument, type OpenApiIssuer } from '../openapi.ts';
import type { RouteDeclarer, RouteTable } from '../route.ts';

export interface ContractRoutesDeps {
  /** The table every route of the app is recorded in: read when the document is first asked for. */
  table: RouteTable;
  title?: string;
  version?: string;
  /** The identity provider, for the oauth2 / openIdConnect security schemes. */
  issuer?: string | OpenApiIssuer;
}

// A loose description on purpose: the document's own meta-schema is OpenAPI's, not ours.
const openApiDocumentSchema = z.object({
  openapi: z.string(),
  info: z.object({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
  components: z.record(z.string(), z.unknown()),
});

export function contractRoutes(route: RouteDeclarer, deps: ContractRoutesDeps): void {
  // Built on first request (every route is declared by then) and again only if the table grew.
  let cached: { routes: number; json: string } | undefined;

  route(
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This OpenAPI 3.1 document: every operation, its inputs, answers, security and permissions',
      tag: 'contract',
      permissions: 'public',
      responses: { 200: { description: 'The OpenAPI document', schema: openApiDocumentSchema } },
    },
    ({ res }) => {
      if (!cached || cached.routes !== deps.table.routes.length) {
        const document = openApiDocument(deps.table, {
          title: deps.title ?? 'Commerce money flows API',
          version: deps.version ?? '0.1.0',
          issuer: deps.issuer,
        });
        cached = { routes: deps.table.routes.length, json: JSON.stringify(document) };
      }
      res.type('application/json').send(cached.json);
    },
  );
}
