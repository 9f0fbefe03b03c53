/**
 * The switchboard's HTTP error layer: `ApiError` (one error type for the REST API) and the Hono
 * handlers that turn any thrown error into `{error: {code, message, field?}}` with the right
 * status. Unexpected errors are logged with their cause and answered with a generic 500, so no
 * internal detail (or secret) reaches a client.
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { z } from "zod";
import { TmlError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { formatIssue, issuePath } from "../../lib/zod_issues.ts";

export class ApiError extends TmlError {
  constructor(
    status: number,
    code: string,
    message: string,
    options: { field?: string; cause?: unknown } = {},
  ) {
    super(code, message, { status, ...options });
  }
}

export function unauthorized(message = "Cannot authenticate: missing or invalid API token") {
  return new ApiError(401, "unauthorized", message);
}

export function forbidden(message: string) {
  return new ApiError(403, "forbidden", message);
}

export function notFound(message: string) {
  return new ApiError(404, "not_found", message);
}

/** Turns a failed zod parse of request input into a 400 naming the first bad field. */
export function validationError(error: z.ZodError, source: string): ApiError {
  const first = error.issues[0];
  const message = error.issues.slice(0, 5).map((issue) => formatIssue(issue, source)).join("; ");
  return new ApiError(400, "invalid_request", `Invalid ${source}: ${message}`, {
    field: first === undefined ? undefined : issuePath(first),
  });
}

export function errorHandler(log: Logger): ErrorHandler {
  return (error, c) => {
    if (error instanceof TmlError && error.status < 500) {
      return c.json({ error: error.toJSON() }, error.status as 400);
    }
    if (error instanceof TmlError) {
      log.error("request failed", {
        method: c.req.method,
        path: c.req.path,
        code: error.code,
        error: error.message,
        cause: error.cause instanceof Error ? error.cause.message : undefined,
      });
      return c.json({ error: error.toJSON() }, error.status as 500);
    }
    log.error("request failed unexpectedly", {
      method: c.req.method,
      path: c.req.path,
      error: error instanceof Error ? error.message : String(error),
    });
    return c.json(
      { error: { code: "internal_error", message: "Internal error: see the switchboard log" } },
      500,
    );
  };
}

export const notFoundHandler: NotFoundHandler = (c: Context) =>
  c.json(
    { error: { code: "not_found", message: `No such route: ${c.req.method} ${c.req.path}` } },
    404,
  );
