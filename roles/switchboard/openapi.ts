/**
 * The OpenAPI 3.1 document of `/api/v1`, generated from the zod schemas in
 * `lib/protocol/api.ts` (the only definition of the wire types) and the route table below.
 * To document a new route, add a row to `ROUTES`; a test fails while a route of the app is
 * missing from the table.
 */
import { Hono } from "hono";
import { z } from "zod";
import * as api from "../../lib/protocol/api.ts";
import { TML_VERSION } from "../../lib/version.ts";

/** Every schema the document names, under its name in `components.schemas`. */
const SCHEMAS = {
  ApiErrorBody: api.ApiErrorBody,
  LoginRequest: api.LoginRequest,
  TokenCreated: api.TokenCreated,
  CreateTokenRequest: api.CreateTokenRequest,
  TokenInfo: api.TokenInfo,
  TokenList: api.TokenList,
  WhoAmI: api.WhoAmI,
  EnqueueJobRequest: api.EnqueueJobRequest,
  JobView: api.JobView,
  JobList: api.JobList,
  JobHistory: api.JobHistory,
  SupervisorView: api.SupervisorView,
  SupervisorList: api.SupervisorList,
  RendezvousGrantRequest: api.RendezvousGrantRequest,
  RendezvousGrant: api.RendezvousGrant,
  RendezvousTokenRequest: api.RendezvousTokenRequest,
  RendezvousTokenCreated: api.RendezvousTokenCreated,
  RendezvousKeys: api.RendezvousKeys,
} as const;
type SchemaName = keyof typeof SCHEMAS;

export interface RouteDoc {
  method: "get" | "post" | "delete";
  /** Path under `/api/v1`, with `{name}` path parameters (each one a UUID). */
  path: string;
  summary: string;
  request?: SchemaName;
  /** The query string's schema: one parameter per property. */
  query?: z.ZodObject;
  /** A JSON response schema, or another content type described in words. */
  response: SchemaName | { contentType: string; description: string };
  status?: number;
  /** False for routes anyone may call; the rest need `Authorization: Bearer <API token>`. */
  auth?: false;
  /** Error statuses worth naming besides 401 (added for authenticated routes) and 400. */
  errors?: number[];
}

const JSON_TEXT = { contentType: "application/json", description: "OK" };

export const ROUTES: readonly RouteDoc[] = [
  {
    method: "get",
    path: "/health",
    summary: "Liveness check",
    response: JSON_TEXT,
    auth: false,
  },
  {
    method: "get",
    path: "/openapi.json",
    summary: "This document",
    response: JSON_TEXT,
    auth: false,
  },
  {
    method: "post",
    path: "/tokens/login",
    summary:
      "Log in with a name or email and a password; failed attempts are rate-limited per user and per address",
    request: "LoginRequest",
    response: "TokenCreated",
    status: 201,
    auth: false,
    errors: [401, 429],
  },
  {
    method: "post",
    path: "/tokens",
    summary: "Create an API token, optionally limited to a subset of your permissions",
    request: "CreateTokenRequest",
    response: "TokenCreated",
    status: 201,
    errors: [403],
  },
  {
    method: "get",
    path: "/tokens",
    summary: "List your API tokens (admins: any user's, with ?user_id=)",
    query: api.ListTokensQuery,
    response: "TokenList",
    errors: [403],
  },
  {
    method: "delete",
    path: "/tokens/{id}",
    summary: "Revoke an API token (your own; admins: any)",
    response: "TokenInfo",
    errors: [404],
  },
  {
    method: "get",
    path: "/whoami",
    summary: "The caller and the effective permissions of its token",
    response: "WhoAmI",
  },
  {
    method: "post",
    path: "/jobs",
    summary: "Enqueue a job (needs submit_job)",
    request: "EnqueueJobRequest",
    response: "JobView",
    status: 201,
    errors: [403, 413],
  },
  {
    method: "get",
    path: "/jobs",
    summary: "List your jobs (list_jobs: everyone's), newest first, paged by cursor",
    query: api.ListJobsQuery,
    response: "JobList",
  },
  { method: "get", path: "/jobs/{id}", summary: "Show a job", response: "JobView", errors: [404] },
  {
    method: "get",
    path: "/jobs/{id}/history",
    summary: "Every state and exit-status change of a job, with its time and actor",
    response: "JobHistory",
    errors: [404],
  },
  {
    method: "get",
    path: "/jobs/{id}/wait",
    summary: "Long poll: answer once the job is terminated or the timeout has passed",
    query: api.WaitJobQuery,
    response: "JobView",
    errors: [404],
  },
  {
    method: "get",
    path: "/jobs/{id}/logs",
    summary: "The job's console output from a byte offset; with follow, streamed until it ends",
    query: api.JobLogsQuery,
    response: {
      contentType: "text/plain",
      description: "Console bytes; X-Tml-Log-Next-Offset gives the offset to resume from",
    },
    errors: [404],
  },
  {
    method: "post",
    path: "/jobs/{id}/cancel",
    summary: "Cancel a job (your own, or with stop_job:<id>)",
    response: "JobView",
    errors: [403, 404, 409],
  },
  {
    method: "post",
    path: "/jobs/{id}/rendezvous-token",
    summary:
      "A short-lived token that reaches the job's host through its rendezvous server (the job's owner and admins)",
    request: "RendezvousTokenRequest",
    response: "RendezvousTokenCreated",
    status: 201,
    errors: [403, 404, 409],
  },
  {
    method: "get",
    path: "/rendezvous/keys",
    summary: "The public keys rendezvous servers verify grants and user tokens with",
    response: "RendezvousKeys",
    auth: false,
  },
  {
    method: "post",
    path: "/rendezvous/grant",
    summary:
      "A grant for the job a supervisor runs, reporting what it exposes; authenticated with the supervisor's own token, not an API token",
    request: "RendezvousGrantRequest",
    response: "RendezvousGrant",
    auth: false,
    errors: [401, 409],
  },
  {
    method: "get",
    path: "/supervisors",
    summary: "List supervisors (needs list_supervisors)",
    response: "SupervisorList",
    errors: [403],
  },
  {
    method: "get",
    path: "/supervisors/{id}",
    summary: "Show a supervisor (needs read_supervisor_status:<id> or list_supervisors)",
    response: "SupervisorView",
    errors: [403, 404],
  },
  {
    method: "get",
    path: "/supervisors/connect",
    summary:
      "Supervisor websocket; authenticated with the supervisor's own token, not an API token",
    response: { contentType: "websocket", description: "Switching protocols" },
    status: 101,
    auth: false,
  },
];

export function buildOpenApiDocument(): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  const requests = new Set(ROUTES.map((route) => route.request));
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    schemas[name] = toJsonSchema(schema, requests.has(name as SchemaName) ? "input" : "output");
  }
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    (paths[`/api/v1${route.path}`] ??= {})[route.method] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "tml switchboard API",
      version: TML_VERSION,
      description:
        "Errors are JSON `{error: {code, message, field?}}`. Authenticate with `Authorization: Bearer <API token>`.",
    },
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

/** Serves the document at `/openapi.json`, without authentication. */
export function openApiRoutes(): Hono {
  const app = new Hono();
  const document = buildOpenApiDocument();
  app.get("/openapi.json", (c) => c.json(document));
  return app;
}

function operation(route: RouteDoc): Record<string, unknown> {
  const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
  const error = { content: { "application/json": { schema: ref("ApiErrorBody") } } };
  const responses: Record<string, unknown> = {
    [String(route.status ?? 200)]: typeof route.response === "string"
      ? { description: "OK", content: { "application/json": { schema: ref(route.response) } } }
      : route.response.contentType === "websocket"
      ? { description: route.response.description }
      : {
        description: route.response.description,
        content: { [route.response.contentType]: {} },
      },
  };
  const statuses = new Set([...(route.auth === false ? [] : [401]), ...(route.errors ?? [])]);
  for (const status of [...statuses].sort()) {
    responses[String(status)] = { description: ERROR_MEANINGS[status] ?? "Error", ...error };
  }
  responses.default = { description: "Error", ...error };

  const parameters: Record<string, unknown>[] = [];
  for (const [, name] of route.path.matchAll(/\{(\w+)\}/g)) {
    parameters.push({
      name,
      in: "path",
      required: true,
      schema: { type: "string", format: "uuid" },
    });
  }
  if (route.query !== undefined) {
    const shape = toJsonSchema(route.query, "input") as {
      properties?: Record<string, Record<string, unknown>>;
      required?: string[];
    };
    for (const [name, schema] of Object.entries(shape.properties ?? {})) {
      const { description, ...rest } = schema;
      parameters.push({
        name,
        in: "query",
        required: shape.required?.includes(name) ?? false,
        ...(description === undefined ? {} : { description }),
        schema: rest,
      });
    }
  }

  const result: Record<string, unknown> = {
    summary: route.summary,
    operationId: `${route.method}${
      route.path.replace(/\{(\w+)\}/g, "By_$1").replace(/[^A-Za-z0-9]+(.)?/g, (_, c) =>
        (c ?? "").toUpperCase())
    }`,
    responses,
  };
  if (parameters.length > 0) result.parameters = parameters;
  if (route.request !== undefined) {
    result.requestBody = {
      required: true,
      content: { "application/json": { schema: ref(route.request) } },
    };
  }
  if (route.auth === false) result.security = [];
  return result;
}

const ERROR_MEANINGS: Record<number, string> = {
  401: "Missing, unknown, expired or revoked API token (login: wrong user or password)",
  403: "The token lacks a permission the route needs",
  404: "No such resource, or one the caller may not see",
  409: "The resource's state does not allow the change",
  413: "Request body too large",
  429: "Too many failed logins; see Retry-After",
};

/**
 * JSON Schema of a zod schema, without the `$schema` key. Requests are described as clients
 * may send them (a field with a default is optional), responses as the server writes them.
 */
function toJsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
    target: "draft-2020-12",
  }) as Record<string, unknown>;
  return rest;
}
