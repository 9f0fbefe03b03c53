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
/** The characters a tag filter can name (lib/tags), without its `*` glob. */
const TAG = /^[A-Za-z0-9_.:/=+@-]{1,128}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A name shaped like a UUID could be mistaken for another supervisor's id. */
const UUID_SHAPED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function registerSupervisor(
  db: Queryable,
  input: { name: string; tags: string[] },
): Promise<{ supervisor_id: string; token: string }> {
  const action = `Cannot register supervisor "${input.name}"`;
  if (!NAME.test(input.name) || UUID_SHAPED.test(input.name)) {
    throw new AccountsError(
      "invalid_supervisor",
      `${action}: the name must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit, and not a UUID`,
      { field: "name" },
    );
  }
  const bad = input.tags.find((tag) => !TAG.test(tag));
  if (bad !== undefined) {
    throw new AccountsError("invalid_tag", `${action}: invalid tag "${bad}"`, { field: "tags" });
  }
  const token = newSecretToken();
  const supervisorId = crypto.randomUUID();
  try {
    await db.query(
      `INSERT INTO supervisors (supervisor_id, name, tags, token_hash) VALUES ($1, $2, $3, $4)`,
      [supervisorId, input.name, [...new Set(input.tags)], tokenHash(token)],
    );
  } catch (error) {
    if (error instanceof DatabaseError && error.code === "unique_violation") {
      throw new AccountsError("supervisor_exists", `${action}: the name is taken`, {
        status: 409,
        field: "name",
      });
    }
    throw error;
  }
  return { supervisor_id: supervisorId, token };
}

/** Finds a supervisor by id or name; a missing one is a 404 naming what was asked for. */
export async function requireSupervisor(
  db: Queryable,
  idOrName: string,
): Promise<SupervisorRecord> {
  const rows = await db.query<SupervisorRecord>(
    `SELECT ${COLUMNS} FROM supervisors WHERE supervisor_id::text = lower($1) OR name = $1`,
    [idOrName],
  );
  if (rows[0] === undefined) throw supervisorNotFound(idOrName);
  return rows[0];
}

/** Replaces a supervisor's token and returns the new one; the old one stops working at once. */
export async function rotateSupervisorToken(db: Queryable, supervisorId: string): Promise<string> {
  const token = newSecretToken();
  const rows = await db.query(
    `UPDATE supervisors SET token_hash = $2 WHERE supervisor_id = $1 RETURNING supervisor_id`,
    [supervisorId, tokenHash(token)],
  );
  if (rows.length === 0) throw supervisorNotFound(supervisorId);
  return token;
}

/**
 * Removes a supervisor. One that holds an unfinished job is refused: removing it would strand
 * the job, so the job must be canceled (or end) first. Its finished jobs keep their history.
 */
export async function removeSupervisor(db: Queryable, supervisorId: string): Promise<void> {
  const rows = await db.query(
    `DELETE FROM supervisors s WHERE s.supervisor_id = $1 AND NOT EXISTS (
       SELECT 1 FROM jobs j WHERE j.supervisor_id = s.supervisor_id AND j.state <> 'terminated')
     RETURNING supervisor_id`,
    [supervisorId],
  );
  if (rows.length > 0) return;
  const busy = await db.query<{ job_id: string }>(
    `SELECT job_id FROM jobs WHERE supervisor_id = $1 AND state <> 'terminated' LIMIT 1`,
    [supervisorId],
  );
  if (busy[0] === undefined) throw supervisorNotFound(supervisorId);
  throw new AccountsError(
    "supervisor_busy",
    `Cannot remove supervisor "${supervisorId}": it holds unfinished job "${
      busy[0].job_id
    }"; cancel the job first`,
    { status: 409 },
  );
}

/** The supervisor a connection token belongs to, or undefined. */
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

function supervisorNotFound(idOrName: string): AccountsError {
  return new AccountsError("supervisor_not_found", `Cannot find supervisor "${idOrName}"`, {
    status: 404,
  });
}
