/**
 * Reads and validates request input (JSON bodies, query strings, path ids) with zod schemas.
 * Malformed JSON, oversized bodies and schema violations become 4xx `ApiError`s that name the
 * field, before any handler touches the database.
 */
import type { Context } from "hono";
import { z } from "zod";
import { ApiError, validationError } from "./http_errors.ts";

/** Reads a JSON body of at most `maxBytes` and validates it. */
export async function readJsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  maxBytes: number,
): Promise<z.infer<T>> {
  const declared = Number(c.req.header("content-length") ?? "NaN");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const bytes = await readLimited(c.req.raw, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ApiError(
      400,
      "invalid_json",
      `Cannot parse request body: ${(error as Error).message}`,
    );
  }
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error, "request body");
  return result.data;
}

/** Validates the query string against a schema. */
export function readQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) throw validationError(result.error, "query string");
  return result.data;
}

const PathUuid = z.uuid();

/** Validates a path parameter as a UUID, naming it on failure. */
export function readPathUuid(c: Context, name: string): string {
  const value = c.req.param(name);
  const result = PathUuid.safeParse(value);
  if (!result.success) {
    throw new ApiError(400, "invalid_request", `Invalid path: ${name}: expected a UUID`, {
      field: name,
    });
  }
  return result.data;
}

async function readLimited(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body) {
    total += chunk.byteLength;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(
    413,
    "payload_too_large",
    `Cannot accept request body: larger than ${maxBytes} bytes`,
  );
}
