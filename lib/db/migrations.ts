/**
 * Runs the switchboard's schema migrations: ordered by version, each applied in its own
 * transaction together with the row that records it, so a failing migration leaves neither a
 * partial schema nor a record. Concurrent starters are safe: each migration transaction takes an
 * advisory lock and re-checks what is applied. A database that records a version this build
 * does not know (a newer schema) is refused.
 */
import { type Database, DatabaseError } from "./database.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Arbitrary constant key of the advisory lock that serialises migrations. */
const MIGRATION_LOCK_KEY = 7_316_001;

export async function migrate(
  db: Database,
  migrations: readonly Migration[],
): Promise<{ applied: number[] }> {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version <= migrations[i - 1].version) {
      throw new DatabaseError(
        "invalid_migrations",
        `Cannot migrate: migration versions must be strictly increasing, got ${
          migrations[i - 1].version
        } then ${migrations[i].version}`,
      );
    }
  }
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const known = new Set(migrations.map((migration) => migration.version));
  const recorded = await db.query<{ version: number }>(`SELECT version FROM schema_migrations`);
  const unknown = recorded.map((row) => row.version).filter((version) => !known.has(version));
  if (unknown.length > 0) {
    throw new DatabaseError(
      "schema_too_new",
      `Cannot use database: its schema has migration ${
        Math.max(...unknown)
      }, which this tml does not know; upgrade tml`,
    );
  }
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      if (db.kind === "postgres") {
        await tx.query(`SELECT pg_advisory_xact_lock($1)`, [MIGRATION_LOCK_KEY]);
      }
      const rows = await tx.query(`SELECT 1 FROM schema_migrations WHERE version = $1`, [
        migration.version,
      ]);
      if (rows.length > 0) return false;
      await tx.query(migration.sql);
      await tx.query(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return { applied };
}
