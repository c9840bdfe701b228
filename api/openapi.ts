// The OpenAPI 3.1 document of this API, generated from the RouteTable: every path, parameter,
// body and answer comes from the zod schemas the routes validate with (api/route.ts), so the
// contract others read cannot drift from what the routes enforce. Refusals share one error
// schema; security and the permission each route needs come from shared/permissions.ts.
import { z } from 'zod';
import { PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Permission, type Role } from '../shared/permissions.ts';
import type { RouteSpec, RouteTable } from './route.ts';

/** The identity provider that issues the API's access tokens. */
export interface OpenApiIssuer {
  /** The issuer URL (the `iss` claim); its discovery document is at `/.well-known/openid-configuration`. */
  url: string;
  /** Default `<url>/authorize`. */
  authorizationUrl?: string;
  /** Default `<url>/token`. */
  tokenUrl?: string;
}

export interface OpenApiOptions {
  title: string;
  version: string;
  /** Omitted: the document names no server, so clients use the origin they fetched it from. */
  serverUrl?: string;
  /** With it, `oauth2` (authorization code) and `openIdConnect` schemes are offered beside `bearer`. */
  issuer?: string | OpenApiIssuer;
}

/** A schema (or part of one) that JSON Schema cannot express and is documented as `{}` (anything). */
export interface Unrepresentable {
  /** Where: `POST /checkouts body`, `GET /x response 200`, ... */
  at: string;
  /** The JSON pointer inside that schema. */
  path: string;
  message: string;
}

type JsonSchema = Record<string, unknown>;
type JsonObject = Record<string, unknown>;

/**
 * How every zod schema becomes JSON Schema here. `io: 'input'` for requests and responses alike:
 * a request conforms when the route's schema accepts it, and a response conforms when a client
 * parsing it with the same schema would accept it (so objects stay open to additive fields).
 */
export const JSON_SCHEMA_OPTIONS = { target: 'draft-2020-12', io: 'input' } as const;

/** The shared error shape of lib/http-errors.ts; `details` add fields beside code and message. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().describe('machine-readable reason: invalid_request, unauthorized, forbidden, not_found, ...'),
    message: z.string().describe('for people; never a stack trace or an internal name'),
    field: z.string().optional().describe('the (first) request field at fault, for 400'),
  }),
});

/** The refusals every route can give, with the condition under which a route gives each. */
const REFUSALS: Record<number, { description: string; applies: (spec: RouteSpec) => boolean }> = {
  400: {
    description: 'Invalid request (`invalid_request`): a path parameter, query, header or body field is malformed; `error.field` names it',
    applies: (spec) => hasInput(spec),
  },
  401: {
    description: 'No valid credential (`unauthorized`): a missing, expired or otherwise invalid bearer token',
    // a public route with a required header (the webhook's signature) refuses a bad one the same way
    applies: (spec) => !isPublic(spec) || requiredHeaders(spec).length > 0,
  },
  403: {
    description: "The token's roles lack the permission this operation needs (`forbidden`); see `x-permissions`",
    applies: (spec) => !isPublic(spec),
  },
  404: {
    description: 'No such resource (`not_found`), or one that belongs to another customer',
    applies: (spec) => pathParameterNames(spec.path).length > 0,
  },
  409: {
    description: 'A business refusal: the resource is not in a state that allows this (`error.code` names the rule)',
    applies: (spec) => spec.method !== 'get',
  },
  413: {
    description: 'The request body is larger than this operation accepts (`payload_too_large`)',
    applies: (spec) => spec.body !== undefined,
  },
  422: {
    description: 'The idempotency key or request id was already used with a different request (`idempotency_key_reused`)',
    applies: (spec) => spec.method === 'post' && (spec.body !== undefined || Object.keys(spec.headers ?? {}).length > 0),
  },
  429: {
    description: 'Too many requests (`rate_limited`); retry after `Retry-After` seconds',
    applies: () => true,
  },
  503: {
    description: 'A dependency is unavailable (`temporal_unavailable`, `database_unavailable`, ...); retry later',
    // the contract is built from memory; every other route reaches Temporal or the database
    applies: (spec) => spec.tag !== 'contract',
  },
};

/** The refusal statuses `spec` can answer (each in the shared error shape). */
export function refusalsOf(spec: RouteSpec): number[] {
  return Object.keys(REFUSALS)
    .map(Number)
    .filter((status) => REFUSALS[status]!.applies(spec));
}

/** The roles that hold `permission` (shared/permissions.ts). */
export function rolesWith(permission: Permission): Role[] {
  return ROLES.filter((role) => ROLE_PERMISSIONS[role].includes(permission));
}

/** `/checkouts/:id/cancel` → `/checkouts/{id}/cancel`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/** `post /checkouts/:id/cancel` → `postCheckoutsByIdCancel`. */
export function operationIdOf(spec: Pick<RouteSpec, 'method' | 'path'>): string {
  const words = spec.path
    .split('/')
    .filter(Boolean)
    .flatMap((segment) => (segment.startsWith(':') ? ['by', segment.slice(1)] : segment.split(/[^A-Za-z0-9]+/)))
    .filter(Boolean);
  return spec.method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

/**
 * The document. `unrepresentable` (optional) collects every schema part that fell back to `{}`,
 * so a test or the caller can name them.
 */
export function openApiDocument(table: RouteTable, opts: OpenApiOptions, unrepresentable: Unrepresentable[] = []): JsonObject {
  const components = new Components();
  components.schemas.Error = components.convert(errorBodySchema, 'shared error body', unrepresentable, 'Error');
  const errorRef = { $ref: '#/components/schemas/Error' };

  const paths: Record<string, Record<string, JsonObject>> = {};
  const operationIds = new Set<string>();
  for (const spec of table.routes) {
    const path = openApiPath(spec.path);
    const where = `${spec.method.toUpperCase()} ${spec.path}`;
    const convert = (schema: z.ZodType, part: string) => components.convert(schema, `${where} ${part}`, unrepresentable, operationIdOf(spec));

    let operationId = operationIdOf(spec);
    for (let n = 2; operationIds.has(operationId); n++) operationId = `${operationIdOf(spec)}${n}`;
    operationIds.add(operationId);

    const parameters: JsonObject[] = [
      ...objectParameters(spec.params, 'path', convert),
      // an Express path parameter the params schema does not describe is still a required string
      ...pathParameterNames(spec.path)
        .filter((name) => !objectKeys(spec.params, convert).includes(name))
        .map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...objectParameters(spec.query, 'query', convert),
      ...Object.entries(spec.headers ?? {}).map(([name, header]) => ({
        name,
        in: 'header',
        description: header.description,
        required: header.required,
        schema: convert(header.schema, `header ${name}`),
      })),
    ];

    const responses: Record<string, JsonObject> = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      // a refusal a route declares itself (e.g. 404 "no run yet" without a path parameter) is the shared error unless it says otherwise
      const schema = response.schema ? convert(response.schema, `response ${status}`) : Number(status) >= 400 ? errorRef : undefined;
      responses[status] = {
        description: response.description,
        ...(schema ? { content: { 'application/json': { schema } } } : {}),
      };
    }
    for (const status of refusalsOf(spec)) {
      responses[String(status)] ??= {
        description: REFUSALS[status]!.description,
        ...(status === 429 ? { headers: { 'Retry-After': { description: 'seconds to wait', schema: { type: 'string' } } } } : {}),
        content: { 'application/json': { schema: errorRef } },
      };
    }

    const operation: JsonObject = {
      operationId,
      summary: spec.summary,
      tags: [spec.tag],
      ...(parameters.length ? { parameters } : {}),
      ...(spec.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: convert(spec.body, 'body') } } } }
        : {}),
      responses,
    };
    if (isPublic(spec)) {
      operation.security = [];
    } else {
      const permissions = spec.permissions as readonly Permission[];
      operation.security = opts.issuer ? [{ bearer: [] }, { oauth2: [] }, { openIdConnect: [] }] : [{ bearer: [] }];
      operation['x-permissions'] = permissions.map((permission) => ({
        permission,
        description: PERMISSIONS[permission],
        roles: rolesWith(permission),
      }));
      operation.description = `Needs ${permissions.map((p) => `\`${p}\``).join(' or ')} (roles: ${[
        ...new Set(permissions.flatMap(rolesWith)),
      ].join(', ')}).`;
    }
    (paths[path] ??= {})[spec.method] = operation;
  }

  const tags = [...new Set(table.routes.map((spec) => spec.tag))].map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: opts.title,
      version: opts.version,
      description:
        'Every operation except the public ones needs a bearer access token (JWT) from the identity provider; ' +
        'the roles in it grant the permissions each operation lists under `x-permissions`. ' +
        'Every refusal is `{ "error": { "code", "message", "field"? } }`.',
    },
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    tags,
    paths,
    components: { schemas: components.schemas, securitySchemes: securitySchemes(opts.issuer) },
  };
}

function securitySchemes(issuer: OpenApiOptions['issuer']): JsonObject {
  const schemes: JsonObject = {
    bearer: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: "An OAuth 2.0 / OpenID Connect access token from the API's issuer, with this API as its audience and the caller's roles",
    },
  };
  if (!issuer) return schemes;
  const { url, authorizationUrl, tokenUrl } = typeof issuer === 'string' ? { url: issuer } : issuer;
  const base = url.replace(/\/+$/, '');
  schemes.oauth2 = {
    type: 'oauth2',
    description: 'Authorization code with PKCE at the identity provider (as the operations page signs in)',
    flows: {
      authorizationCode: {
        authorizationUrl: authorizationUrl ?? `${base}/authorize`,
        tokenUrl: tokenUrl ?? `${base}/token`,
        scopes: { openid: 'sign in' },
      },
    },
  };
  schemes.openIdConnect = { type: 'openIdConnect', openIdConnectUrl: `${base}/.well-known/openid-configuration` };
  return schemes;
}

function isPublic(spec: RouteSpec): boolean {
  return spec.permissions === 'public';
}

function hasInput(spec: RouteSpec): boolean {
  return Boolean(spec.params || spec.query || spec.body || Object.keys(spec.headers ?? {}).length || pathParameterNames(spec.path).length);
}

function requiredHeaders(spec: RouteSpec): string[] {
  return Object.entries(spec.headers ?? {})
    .filter(([, header]) => header.required)
    .map(([name]) => name);
}

function pathParameterNames(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
}

type Convert = (schema: z.ZodType, part: string) => JsonSchema;

function objectKeys(schema: z.ZodType | undefined, convert: Convert): string[] {
  if (!schema) return [];
  const json = convert(schema, 'params');
  return Object.keys((json.properties as JsonObject | undefined) ?? {});
}

/** One parameter per property of an object schema (params or query), with its own JSON schema. */
function objectParameters(schema: z.ZodType | undefined, location: 'path' | 'query', convert: Convert): JsonObject[] {
  if (!schema) return [];
  const json = convert(schema, location === 'path' ? 'params' : 'query');
  const properties = (json.properties as Record<string, JsonSchema> | undefined) ?? {};
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: location,
      // a path parameter is always required in OpenAPI
      required: location === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: propertySchema,
    };
  });
}

/**
 * Converts zod schemas and keeps what they share: definitions that zod extracts (`$defs`, for
 * schemas with an `id` in their metadata or recursive ones) move to `components.schemas`, since
 * a `#/$defs/...` reference would otherwise resolve against the OpenAPI document's root.
 */
class Components {
  readonly schemas: Record<string, JsonSchema> = {};
  private readonly cache = new Map<z.ZodType, JsonSchema>();

  convert(schema: z.ZodType, at: string, unrepresentable: Unrepresentable[], nameHint: string): JsonSchema {
    const cached = this.cache.get(schema);
    if (cached) return cached;
    const seen = new Set<string>();
    let json: JsonSchema;
    try {
      json = z.toJSONSchema(schema, {
        ...JSON_SCHEMA_OPTIONS,
        unrepresentable: (ctx) => {
          const path = `/${ctx.path.join('/')}`;
          // zod visits some sites more than once
          if (!seen.has(path + ctx.message)) {
            seen.add(path + ctx.message);
            unrepresentable.push({ at, path, message: ctx.message });
          }
          return 'any';
        },
      }) as JsonSchema;
    } catch (err) {
      // e.g. a cycle zod cannot reference: documented as anything rather than no document at all
      unrepresentable.push({ at, path: '/', message: err instanceof Error ? err.message : String(err) });
      json = {};
    }
    const result = this.hoistDefinitions(json, nameHint);
    this.cache.set(schema, result);
    return result;
  }

  private hoistDefinitions(json: JsonSchema, nameHint: string): JsonSchema {
    const { $schema: _dialect, $defs, ...rest } = json;
    const defs = ($defs as Record<string, JsonSchema> | undefined) ?? {};
    const selfReferencing = containsRef(rest, '#');
    if (Object.keys(defs).length === 0 && !selfReferencing) return rest;

    const renamed = new Map<string, string>();
    for (const [name, def] of Object.entries(defs)) {
      renamed.set(`#/$defs/${name}`, `#/components/schemas/${this.freeName(name.startsWith('__') ? `${nameHint}_${name.replace(/^_+/, '')}` : name, def)}`);
    }
    let rootName: string | undefined;
    if (selfReferencing) {
      rootName = this.freeName(nameHint, rest);
      renamed.set('#', `#/components/schemas/${rootName}`);
    }
    for (const [name, def] of Object.entries(defs)) {
      this.schemas[renamed.get(`#/$defs/${name}`)!.split('/').pop()!] = rewriteRefs(def, renamed) as JsonSchema;
    }
    const root = rewriteRefs(rest, renamed) as JsonSchema;
    if (!rootName) return root;
    this.schemas[rootName] = root;
    return { $ref: `#/components/schemas/${rootName}` };
  }

  /** `name`, or `name2`, ... when `name` already holds a different schema. */
  private freeName(name: string, def: JsonSchema): string {
    const clean = name.replace(/[^A-Za-z0-9._-]/g, '_');
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? clean : `${clean}${n}`;
      const existing = this.schemas[candidate];
      if (!existing || JSON.stringify(existing) === JSON.stringify(def)) return candidate;
    }
  }
}

function containsRef(value: unknown, ref: string): boolean {
  if (Array.isArray(value)) return value.some((v) => containsRef(v, ref));
  if (value && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => (k === '$ref' && v === ref) || containsRef(v, ref));
  }
  return false;
}

function rewriteRefs(value: unknown, renamed: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, renamed));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? (renamed.get(v) ?? v) : rewriteRefs(v, renamed)]),
    );
  }
  return value;
}
