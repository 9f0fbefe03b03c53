/**
 * The PostgreSQL backend (postgres.js). int8 and numeric are parsed to JavaScript numbers so
 * rows look the same as PGlite's; every connection's `search_path` is the switchboard schema.
 */
import postgres from "postgres";
import { TmlError } from "../errors.ts";
import { type Database, type Queryable, SCHEMA, wrapDriverError } from "./database.ts";

export async function openPostgres(url: string, options: { max?: number } = {}): Promise<Database> {
  const sql = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: { search_path: `${SCHEMA},public`, application_name: "tml" },
    types: {
      int8: {
        to: 20,
        from: [20],
        serialize: (value: unknown) => String(value),
        parse: (value: string) => Number(value),
      },
      // Callers pass jsonb parameters as JSON text (`$1::jsonb`, JSON.stringify(x)), as PGlite
      // takes them; the default serializer would encode that string a second time.
      json: {
        to: 3802,
        from: [114, 3802],
        serialize: (value: unknown) => typeof value === "string" ? value : JSON.stringify(value),
        parse: (value: string) => JSON.parse(value),
      },
      numeric: {
        to: 1700,
        from: [1700],
        serialize: (value: unknown) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  });
  const run = async <T>(
    target: postgres.Sql | postgres.TransactionSql,
    text: string,
    params?: readonly unknown[],
  ) => {
    try {
      // Without parameters, use the simple protocol so a migration may hold several statements.
      const rows = params === undefined || params.length === 0
        ? await target.unsafe(text).simple()
        // Prepared: the switchboard's statements repeat, and planning them dominated its cost.
        : await target.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
      return [...rows] as T[];
    } catch (error) {
      throw wrapDriverError(error);
    }
  };
  try {
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw wrapDriverError(error);
  }
  return {
    kind: "postgres",
    query: (text, params) => run(sql, text, params),
    transaction: async <T>(fn: (tx: Queryable) => Promise<T>) => {
      try {
        return await sql.begin(async (tx) =>
          await fn({ query: (text, params) => run(tx, text, params) })
        ) as T;
      } catch (error) {
        // A driver error has a SQLSTATE `code`; tml's own errors (which also have a `code`)
        // thrown by fn pass through unchanged.
        throw error instanceof Error && "code" in error && !(error instanceof TmlError)
          ? wrapDriverError(error)
          : error;
      }
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
