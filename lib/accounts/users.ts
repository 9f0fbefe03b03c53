/**
 * Users and their permissions in the operator-facing `users` and `user_privileges` tables,
 * which keep the names operators' SQL uses. Passwords enter here and leave only as hashes.
 */
import type { Queryable } from "../db/database.ts";
import { DatabaseError } from "../db/database.ts";
import { Permission } from "../protocol/api.ts";
import { AccountsError } from "./errors.ts";
import { hashPassword } from "./passwords.ts";

export type UserType = "normal" | "system";

export interface UserRecord {
  user_id: string;
  name: string;
  email: string;
  password_hash: string;
  user_type: UserType;
  locked: boolean;
}

/** A user as `tml admin user list` shows it: no password hash, with its permissions. */
export interface UserSummary {
  user_id: string;
  name: string;
  email: string;
  user_type: UserType;
  locked: boolean;
  permissions: string[];
}

/** Login accepts at most this many characters (`LoginRequest.password`), so no longer one. */
const MAX_PASSWORD_LENGTH = 1024;
const USER_COLUMNS = "user_id, name, email, password_hash, user_type, locked";

/** Returns `permission` when it is in Treadmill's vocabulary; throws naming it otherwise. */
export function checkPermission(permission: string): string {
  if (!Permission.safeParse(permission).success) {
    throw new AccountsError(
      "invalid_permission",
      `Invalid permission "${permission}": expected one such as "submit_job" or "run_job_on_supervisor:<supervisor id>"`,
      { field: "permissions" },
    );
  }
  return permission;
}

/** Creates a user and grants its permissions in one statement, so a failure leaves nothing. */
export async function createUser(db: Queryable, input: {
  name: string;
  email: string;
  password: string;
  userType?: UserType;
  permissions?: string[];
}): Promise<UserRecord> {
  const action = `Cannot create user "${input.name}"`;
  if (!/^[^\s@]{1,128}$/.test(input.name)) {
    throw new AccountsError(
      "invalid_user",
      `${action}: the name must be 1-128 characters without spaces or "@"`,
      { field: "name" },
    );
  }
  if (!/^[^\s@]+@[^\s@]+$/.test(input.email) || input.email.length > 256) {
    throw new AccountsError("invalid_user", `${action}: invalid email "${input.email}"`, {
      field: "email",
    });
  }
  checkPasswordShape(input.password, action);
  const permissions = [...new Set((input.permissions ?? []).map(checkPermission))];
  const passwordHash = await hashPassword(input.password);
  try {
    const [user] = await db.query<UserRecord>(
      `WITH created AS (
         INSERT INTO users (name, email, password_hash, user_type) VALUES ($1, $2, $3, $4)
         RETURNING ${USER_COLUMNS}
       ), granted AS (
         INSERT INTO user_privileges (user_id, permission)
         SELECT created.user_id, permission FROM created, unnest($5::text[]) AS permission
       )
       SELECT ${USER_COLUMNS} FROM created`,
      [input.name, input.email, passwordHash, input.userType ?? "normal", permissions],
    );
    return user;
  } catch (error) {
    if (error instanceof DatabaseError && error.code === "unique_violation") {
      // The constraint's name says which column clashed; it carries no secret.
      const column = /users_email_key/.test(error.message) ? "email" : "name";
      throw new AccountsError(
        "user_exists",
        `${action}: a user with that ${column} already exists`,
        { status: 409, field: column },
      );
    }
    throw error;
  }
}

/**
 * Finds a user by name or email. A name wins over another user's identical email, so an
 * operator-chosen name can never be shadowed.
 */
export async function findUser(db: Queryable, login: string): Promise<UserRecord | undefined> {
  const rows = await db.query<UserRecord>(
    `SELECT ${USER_COLUMNS} FROM users
     WHERE name = $1 OR email = $1 ORDER BY (name = $1) DESC LIMIT 1`,
    [login],
  );
  return rows[0];
}

/** Like `findUser`, but a missing user is a 404 naming the login. */
export async function requireUser(db: Queryable, login: string): Promise<UserRecord> {
  const user = await findUser(db, login);
  if (user === undefined) {
    throw new AccountsError("user_not_found", `Cannot find user "${login}"`, { status: 404 });
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

/** Grants a permission; granting one the user holds is a no-op. */
export async function grant(db: Queryable, userId: string, permission: string): Promise<void> {
  await db.query(
    `INSERT INTO user_privileges (user_id, permission) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
    [userId, checkPermission(permission)],
  );
}

/**
 * Revokes a permission; revoking one the user lacks is a no-op. Not checked against the
 * vocabulary, so a malformed row inserted by hand can still be removed.
 */
export async function revoke(db: Queryable, userId: string, permission: string): Promise<void> {
  await db.query(`DELETE FROM user_privileges WHERE user_id = $1 AND permission = $2`, [
    userId,
    permission,
  ]);
}

/** Locks or unlocks a user; a locked user can neither log in nor use existing tokens. */
export async function setLocked(db: Queryable, userId: string, locked: boolean): Promise<void> {
  await db.query(`UPDATE users SET locked = $2 WHERE user_id = $1`, [userId, locked]);
}

export async function setPassword(db: Queryable, userId: string, password: string): Promise<void> {
  checkPasswordShape(password, "Cannot set password");
  await db.query(`UPDATE users SET password_hash = $2 WHERE user_id = $1`, [
    userId,
    await hashPassword(password),
  ]);
}

export async function listUsers(db: Queryable): Promise<UserSummary[]> {
  return await db.query<UserSummary>(
    `SELECT u.user_id, u.name, u.email, u.user_type, u.locked,
       ARRAY(SELECT p.permission FROM user_privileges p WHERE p.user_id = u.user_id
             ORDER BY p.permission) AS permissions
     FROM users u ORDER BY u.name`,
  );
}

/** The message never contains the password, only what is wrong with it. */
function checkPasswordShape(password: string, action: string): void {
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    throw new AccountsError(
      "invalid_password",
      `${action}: the password must be 1-${MAX_PASSWORD_LENGTH} characters`,
      { field: "password" },
    );
  }
}
