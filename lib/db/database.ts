/**
 * The switchboard's database interface. Two backends implement it, PostgreSQL (postgres.js)
 * and embedded PGlite, and pass one conformance suite, so every query returns the same
 * JavaScript values on both: uuid/text -> string, int4/int8/numeric -> number, boolean,
 * timestamptz -> Date, jsonb -> parsed value, text[] -> string[], bytea -> Uint8Array,
 * NULL -> null. Both set `search_path` to `tml_switchboard`, so SQL uses bare table names.
 */
import { TmlError } from "../errors.ts";

export interface Queryable {
  /** Runs one statement with positional parameters ($1, $2, …) and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs fn in one transaction: commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The schema that holds every switchboard table. */
export const SCHEMA = "tml_switchboard";

/**
 * A database failure. The message names the failure class (never the SQL's parameters, which
 * may hold secrets); `sqlState` keeps PostgreSQL's error code for callers that branch on it.
 */
export class DatabaseError extends TmlError {
  readonly sqlState?: string;

  constructor(code: string, message: string, options: { sqlState?: string; cause?: unknown } = {}) {
    super(code, message, { status: code === "unique_violation" ? 409 : 500, cause: options.cause });
    this.sqlState = options.sqlState;
  }
}

/** Wraps a driver error, keeping its SQLSTATE and message but not the statement's values. */
export function wrapDriverError(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const sqlState = typeof error === "object" && error !== null
    ? String((error as { code?: unknown }).code ?? "") || undefined
    : undefined;
  const detail = error instanceof Error ? error.message : String(error);
  const code = sqlState === "23505"
    ? "unique_violation"
    : sqlState === "40001"
    ? "serialization_failure"
    : sqlState === "23503"
    ? "foreign_key_violation"
    : "database_error";
  return new DatabaseError(code, `Database error: ${detail}`, { sqlState, cause: error });
}
