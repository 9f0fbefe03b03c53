/**
 * The image store's HTTP error layer: `StoreHttpError` for request-level failures, and the Hono
 * handlers that answer every thrown error as `{error: {code, message, field?}}`. Store errors
 * (`StoreError` from lib/store) carry their own status; anything unexpected is logged with its
 * cause and answered with a generic 500, so no internal detail reaches a client.
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { TmlError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";

export class StoreHttpError extends TmlError {
  constructor(
    status: number,
    code: string,
    message: string,
    options: { field?: string; cause?: unknown } = {},
  ) {
    super(code, message, { status, ...options });
  }
}

/** The JSON error response for a thrown value, logging server-side failures. */
export function errorResponse(error: unknown, c: Context, log: Logger): Response {
  if (error instanceof TmlError && error.status < 500) {
    return c.json({ error: error.toJSON() }, error.status as 400);
  }
  log.error("request failed", {
    method: c.req.method,
    path: c.req.path,
    code: error instanceof TmlError ? error.code : undefined,
    error: error instanceof Error ? error.message : String(error),
    cause: error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined,
  });
  if (error instanceof TmlError) return c.json({ error: error.toJSON() }, error.status as 500);
  return c.json(
    { error: { code: "internal_error", message: "Internal error: see the image store log" } },
    500,
  );
}

export function errorHandler(log: Logger): ErrorHandler {
  return (error, c) => errorResponse(error, c, log);
}

export const notFoundHandler: NotFoundHandler = (c: Context) =>
  c.json(
    { error: { code: "not_found", message: `No such route: ${c.req.method} ${c.req.path}` } },
    404,
  );
