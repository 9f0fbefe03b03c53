/** Users and their permissions in the operator-facing `users` and `user_privileges` tables. */
import type { Queryable } from "../db/database.ts";
import { DatabaseError } from "../db/database.ts";
import { Permission } from "../protocol/api.ts";
import { AccountsError } from "./errors.ts";
import { hashPassword } from "./passwords.ts";

export interface UserRecord {
  user_id: string;
  name: string;
  email: string;
  password_hash: string;
  user_type: "normal" | "system";
  locked: boolean;
}

export interface UserSummary {
  user_id: string;
  name: string;
  email: string;
  user_type: "normal" | "system";
  locked: boolean;
  permissions: string[];
}

export function checkPermission(permission: string): string {
  if (!Permission.safeParse(permission).success) {
    throw new AccountsError(
      "invalid_permission",
      `Invalid permission "${permission}": expected one such as "submit_job" or "run_job_on_supervisor:<supervisor id>"`,
    );
  }
  return permission;
}

export async function createUser(db: Queryable, input: {
  name: string;
  email: string;
  password: string;
  userType?: "normal" | "system";
  permissions?: string[];
}): Promise<UserRecord> {
  const permissions = (input.permissions ?? []).map(checkPermission);
  if (input.name.trim() === "" || input.email.trim() === "") {
    throw new AccountsError("invalid_user", "Cannot create user: name and email are required");
  }
  const passwordHash = await hashPassword(input.password);
  try {
    const [user] = await db.query<UserRecord>(
      `INSERT INTO users (name, email, password_hash, user_type) VALUES ($1, $2, $3, $4)
       RETURNING user_id, name, email, password_hash, user_type, locked`,
      [input.name, input.email, passwordHash, input.userType ?? "normal"],
    );
    for (const permission of permissions) await grant(db, user.user_id, permission);
    return user;
  } catch (error) {
    if (error instanceof DatabaseError && error.code === "unique_violation") {
      throw new AccountsError(
        "user_exists",
        `Cannot create user "${input.name}": a user with that name or email already exists`,
        409,
      );
    }
    throw error;
  }
}

/** Finds a user by name or email. */
export async function findUser(db: Queryable, login: string): Promise<UserRecord | undefined> {
  const rows = await db.query<UserRecord>(
    `SELECT user_id, name, email, password_hash, user_type, locked FROM users
     WHERE name = $1 OR email = $1 ORDER BY (name = $1) DESC LIMIT 1`,
    [login],
  );
  return rows[0];
}

export async function requireUser(db: Queryable, login: string): Promise<UserRecord> {
  const user = await findUser(db, login);
  if (user === undefined) {
    throw new AccountsError("user_not_found", `Cannot find user "${login}"`, 404);
  }
  return user;
}

export async function permissionsOf(db: Queryable, userId: string): Promise<string[]> {
  const rows = await db.query<{ permission: string }>(
    `SELECT permission FROM user_privileges WHERE user_id = $1 ORDER BY permission`,
    [userId],
  );
  return rows.map((row) => row.permission);
}

export async function grant(db: Queryable, userId: string, permission: string): Promise<void> {
  await db.query(
    `INSERT INTO user_privileges (user_id, permission) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
    [userId, checkPermission(permission)],
  );
}

export async function revoke(db: Queryable, userId: string, permission: string): Promise<void> {
  await db.query(`DELETE FROM user_privileges WHERE user_id = $1 AND permission = $2`, [
    userId,
    permission,
  ]);
}

export async function setLocked(db: Queryable, userId: string, locked: boolean): Promise<void> {
  await db.query(`UPDATE users SET locked = $2 WHERE user_id = $1`, [userId, locked]);
}

export async function setPassword(db: Queryable, userId: string, password: string): Promise<void> {
  await db.query(`UPDATE users SET password_hash = $2 WHERE user_id = $1`, [
    userId,
    await hashPassword(password),
  ]);
}

export async function listUsers(db: Queryable): Promise<UserSummary[]> {
  const users = await db.query<UserRecord>(
    `SELECT user_id, name, email, password_hash, user_type, locked FROM users ORDER BY name`,
  );
  const out: UserSummary[] = [];
  for (const user of users) {
    out.push({
      user_id: user.user_id,
      name: user.name,
      email: user.email,
      user_type: user.user_type,
      locked: user.locked,
      permissions: await permissionsOf(db, user.user_id),
    });
  }
  return out;
}
