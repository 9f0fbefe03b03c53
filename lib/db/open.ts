/**
 * Opens the switchboard database: PostgreSQL when a URL is configured, otherwise embedded
 * PGlite under `<data dir>/pglite`, and brings its schema up to date.
 */
import { createLogger } from "../log.ts";
import type { Database } from "./database.ts";
import { migrate } from "./migrations.ts";
import { SWITCHBOARD_MIGRATIONS } from "./migrations/mod.ts";
import { openPglite } from "./pglite.ts";
import { openPostgres } from "./postgres.ts";

export async function openSwitchboardDatabase(
  options: { databaseUrl?: string; dataDir: string },
): Promise<Database> {
  const log = createLogger("database");
  const db = options.databaseUrl !== undefined
    ? await openPostgres(options.databaseUrl)
    : await openPglite(`${options.dataDir}/pglite`);
  try {
    const { applied } = await migrate(db, SWITCHBOARD_MIGRATIONS);
    log.info("database open", {
      backend: db.kind,
      location: options.databaseUrl !== undefined
        ? redactPassword(options.databaseUrl)
        : `${options.dataDir}/pglite`,
      migrations_applied: applied.join(",") || "none",
    });
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

/** A database URL safe to log: the password replaced by `***`. */
export function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable database URL)";
  }
}
