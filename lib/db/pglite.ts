/**
 * The embedded PGlite backend: the zero-setup default, stored under the data directory (or in
 * memory). PGlite is one connection in one process, so transactions are serialised through a
 * queue here: a query from outside a transaction waits until the running transaction ends
 * instead of interleaving with it.
 */
import { PGlite } from "@electric-sql/pglite";
import { TmlError } from "../errors.ts";
import { type Database, type Queryable, SCHEMA, wrapDriverError } from "./database.ts";

const NUMERIC_OID = 1700;

export async function openPglite(dataDir: string | undefined): Promise<Database> {
  if (dataDir !== undefined) await Deno.mkdir(dataDir, { recursive: true });
  const pglite = new PGlite(dataDir, {
    parsers: { [NUMERIC_OID]: (value: string) => Number(value) },
  });
  await pglite.waitReady;
  await pglite.exec(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}; SET search_path TO ${SCHEMA}, public;`);

  // One link in the chain per transaction or lone query: they run strictly one after another.
  let tail: Promise<unknown> = Promise.resolve();
  const serialise = <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => {});
    return run;
  };
  const runQuery = async <T>(
    target: Pick<PGlite, "query" | "exec">,
    sql: string,
    params?: readonly unknown[],
  ) => {
    try {
      // Without parameters, use the simple protocol so a migration may hold several statements.
      if (params === undefined || params.length === 0) {
        return ((await target.exec(sql)).at(-1)?.rows ?? []) as T[];
      }
      return (await target.query<T>(sql, params as unknown[])).rows;
    } catch (error) {
      throw wrapDriverError(error);
    }
  };

  return {
    kind: "pglite",
    query: <T>(sql: string, params?: readonly unknown[]) =>
      serialise(() => runQuery<T>(pglite, sql, params)),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      serialise(async () => {
        try {
          return await pglite.transaction(async (tx) => {
            const queryable: Queryable = { query: (sql, params) => runQuery(tx, sql, params) };
            return await fn(queryable);
          });
        } catch (error) {
          // A driver error has a SQLSTATE `code`; tml's own errors (which also have a `code`)
          // thrown by fn pass through unchanged.
          throw error instanceof Error && "code" in error && !(error instanceof TmlError)
            ? wrapDriverError(error)
            : error;
        }
      }),
    close: () => serialise(() => pglite.close()),
  };
}
