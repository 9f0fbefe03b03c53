/**
 * The OpenAPI 3.1 document of `/api/v1`, generated from the zod schemas in
 * `lib/protocol/api.ts` (the only definition of the wire types) and the route table below.
 */
import { Hono } from "hono";
import { z } from "zod";
import * as api from "../../lib/protocol/api.ts";
import { TML_VERSION } from "../../lib/version.ts";

interface RouteDoc {
  method: "get" | "post" | "delete";
  path: string;
  summary: string;
  request?: keyof typeof SCHEMAS;
  response?: keyof typeof SCHEMAS;
  status?: number;
  auth?: false;
}

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
} as const;

export const ROUTES: readonly RouteDoc[] = [
  {
    method: "post",
    path: "/tokens/login",
    summary: "Log in with a name or email and a password",
    request: "LoginRequest",
    response: "TokenCreated",
    status: 201,
    auth: false,
  },
  {
    method: "post",
    path: "/tokens",
    summary: "Create an API token",
    request: "CreateTokenRequest",
    response: "TokenCreated",
    status: 201,
  },
  { method: "get", path: "/tokens", summary: "List your API tokens", response: "TokenList" },
  { method: "delete", path: "/tokens/{id}", summary: "Revoke an API token", response: "TokenInfo" },
  {
    method: "get",
    path: "/whoami",
    summary: "The caller and its effective permissions",
    response: "WhoAmI",
  },
  {
    method: "post",
    path: "/jobs",
    summary: "Enqueue a job",
    request: "EnqueueJobRequest",
    response: "JobView",
    status: 201,
  },
  {
    method: "get",
    path: "/jobs",
    summary: "List jobs (state filter, paging by cursor)",
    response: "JobList",
  },
  { method: "get", path: "/jobs/{id}", summary: "Show a job", response: "JobView" },
  {
    method: "get",
    path: "/jobs/{id}/history",
    summary: "Every state and exit-status change of a job",
    response: "JobHistory",
  },
  {
    method: "get",
    path: "/jobs/{id}/wait",
    summary: "Wait (long poll, ?timeout=) until a job is terminated",
    response: "JobView",
  },
  { method: "post", path: "/jobs/{id}/cancel", summary: "Cancel a job", response: "JobView" },
  { method: "get", path: "/supervisors", summary: "List supervisors", response: "SupervisorList" },
  {
    method: "get",
    path: "/supervisors/{id}",
    summary: "Show a supervisor",
    response: "SupervisorView",
  },
  {
    method: "get",
    path: "/supervisors/connect",
    summary: "Supervisor websocket (bearer supervisor token)",
    auth: false,
  },
];

export function buildOpenApiDocument(): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    schemas[name] = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  }
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
    const operation: Record<string, unknown> = {
      summary: route.summary,
      responses: {
        [String(route.status ?? 200)]: route.response === undefined
          ? { description: "Switching protocols" }
          : { description: "OK", content: { "application/json": { schema: ref(route.response) } } },
        default: {
          description: "Error",
          content: { "application/json": { schema: ref("ApiErrorBody") } },
        },
      },
    };
    if (route.request !== undefined) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: ref(route.request) } },
      };
    }
    if (route.auth === false) operation.security = [];
    if (route.path.includes("{id}")) {
      operation.parameters = [{
        name: "id",
        in: "path",
        required: true,
        schema: { type: "string", format: "uuid" },
      }];
    }
    (paths[`/api/v1${route.path}`] ??= {})[route.method] = operation;
  }
  return {
    openapi: "3.1.0",
    info: { title: "tml switchboard API", version: TML_VERSION },
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

export function openApiRoutes(): Hono {
  const app = new Hono();
  const document = buildOpenApiDocument();
  app.get("/openapi.json", (c) => c.json(document));
  return app;
}
