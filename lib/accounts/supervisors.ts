/**
 * Registered supervisors: name, tags and the SHA-256 of the token each one connects with.
 * Registration and token rotation return the token once; it is never stored or shown again.
 */
import type { Queryable } from "../db/database.ts";
import { DatabaseError } from "../db/database.ts";
import { AccountsError } from "./errors.ts";
import { newSecretToken, tokenHash } from "./secrets.ts";

export interface SupervisorRecord {
  supervisor_id: string;
  name: string;
  tags: string[];
  created_at: Date;
  last_seen_at: Date | null;
}

const COLUMNS = "supervisor_id, name, tags, created_at, last_seen_at";
const TAG = /^[A-Za-z0-9_.:/=+@-]{1,128}$/;

export async function registerSupervisor(
  db: Queryable,
  input: { name: string; tags: string[] },
): Promise<{ supervisor_id: string; token: string }> {
  const bad = input.tags.find((tag) => !TAG.test(tag));
  if (bad !== undefined) {
    throw new AccountsError("invalid_tag", `Cannot register supervisor: invalid tag "${bad}"`);
  }
  const token = newSecretToken();
  const supervisorId = crypto.randomUUID();
  try {
    await db.query(
      `INSERT INTO supervisors (supervisor_id, name, tags, token_hash) VALUES ($1, $2, $3, $4)`,
      [supervisorId, input.name, input.tags, tokenHash(token)],
    );
  } catch (error) {
    if (error instanceof DatabaseError && error.code === "unique_violation") {
      throw new AccountsError(
        "supervisor_exists",
        `Cannot register supervisor "${input.name}": the name is taken`,
        409,
      );
    }
    throw error;
  }
  return { supervisor_id: supervisorId, token };
}

/** Finds a supervisor by id or name. */
export async function requireSupervisor(
  db: Queryable,
  idOrName: string,
): Promise<SupervisorRecord> {
  const rows = await db.query<SupervisorRecord>(
    `SELECT ${COLUMNS} FROM supervisors WHERE supervisor_id::text = $1 OR name = $1`,
    [idOrName],
  );
  if (rows[0] === undefined) {
    throw new AccountsError("supervisor_not_found", `Cannot find supervisor "${idOrName}"`, 404);
  }
  return rows[0];
}

export async function rotateSupervisorToken(db: Queryable, supervisorId: string): Promise<string> {
  const token = newSecretToken();
  await db.query(`UPDATE supervisors SET token_hash = $2 WHERE supervisor_id = $1`, [
    supervisorId,
    tokenHash(token),
  ]);
  return token;
}

export async function removeSupervisor(db: Queryable, supervisorId: string): Promise<void> {
  await db.query(`DELETE FROM supervisors WHERE supervisor_id = $1`, [supervisorId]);
}

export async function authenticateSupervisor(
  db: Queryable,
  token: string,
): Promise<SupervisorRecord | undefined> {
  const rows = await db.query<SupervisorRecord>(
    `SELECT ${COLUMNS} FROM supervisors WHERE token_hash = $1`,
    [tokenHash(token)],
  );
  return rows[0];
}

export async function listSupervisorRecords(db: Queryable): Promise<SupervisorRecord[]> {
  return await db.query<SupervisorRecord>(`SELECT ${COLUMNS} FROM supervisors ORDER BY name`);
}
