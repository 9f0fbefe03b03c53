/**
 * API tokens: created for a user with an expiry and an optional subset of the user's
 * permissions, authenticated by the SHA-256 of the presented token, listed and revoked. An
 * expired or revoked token, or one whose user is locked, authenticates no one.
 */
import type { Queryable } from "../db/database.ts";
import { AccountsError } from "./errors.ts";
import { effectivePermissions, grants, type Principal } from "./permissions.ts";
import { newSecretToken, tokenHash } from "./secrets.ts";
import { checkPermission, permissionsOf } from "./users.ts";

export const MAX_TOKEN_LIFETIME_MS = 365 * 86_400_000;

export interface TokenRecord {
  token_id: string;
  user_id: string;
  description: string | null;
  permissions: string[] | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = "token_id, user_id, description, permissions, created_at, expires_at, revoked_at";

/**
 * Creates a token for `userId`. When another token's holder creates it (`creator`), the new
 * token can carry no more than the creator's token does: a token limited to `submit_job`
 * cannot mint a token with all of its owner's permissions, one made without a subset inherits
 * the creator's, and a limited token cannot outlive the one that made it (otherwise a leaked
 * one-hour CI token could extend itself to a year).
 */
export async function createToken(db: Queryable, input: {
  userId: string;
  expiresInMs: number;
  permissions?: string[] | null;
  description?: string;
  creator?: Principal;
  /** The lifetime is a default, not asked for: a limited creator shortens it to its own. */
  shortenToCreator?: boolean;
}): Promise<{ token: string; record: TokenRecord }> {
  if (!(input.expiresInMs > 0) || input.expiresInMs > MAX_TOKEN_LIFETIME_MS) {
    throw new AccountsError(
      "invalid_expiry",
      "Cannot create token: the expiry must be between 1 s and 365 days",
      { field: "expires_in" },
    );
  }
  const requested = input.permissions === undefined || input.permissions === null
    ? null
    : [...new Set(input.permissions.map(checkPermission))];
  const subset = requested ??
    (input.creator?.tokenSubset != null ? [...input.creator.permissions] : null);
  if (requested !== null) {
    const held = input.creator?.permissions ?? await permissionsOf(db, input.userId);
    const beyond = requested.filter((permission) => !grants(held, permission));
    if (beyond.length > 0) {
      throw new AccountsError(
        "permission_not_held",
        `Cannot create token: permission "${beyond[0]}" is not held by ${
          input.creator === undefined ? "its owner" : "the token used to create it"
        }`,
        { status: 403, field: "permissions" },
      );
    }
  }
  let expiresAt = new Date(Date.now() + input.expiresInMs);
  const limitedCreator = input.creator?.tokenSubset != null;
  if (limitedCreator && input.shortenToCreator && expiresAt > input.creator!.tokenExpiresAt) {
    expiresAt = input.creator!.tokenExpiresAt;
  }
  if (limitedCreator && expiresAt > input.creator!.tokenExpiresAt) {
    throw new AccountsError(
      "invalid_expiry",
      `Cannot create token: a token limited to some permissions cannot create one that outlives it (it expires at "${
        input.creator!.tokenExpiresAt.toISOString()
      }")`,
      { status: 403, field: "expires_in" },
    );
  }
  const token = newSecretToken();
  const [record] = await db.query<TokenRecord>(
    `INSERT INTO api_tokens (user_id, token_hash, description, permissions, expires_at)
     VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
    [
      input.userId,
      tokenHash(token),
      input.description ?? null,
      subset,
      expiresAt,
    ],
  );
  return { token, record };
}

/**
 * The principal a token stands for, or undefined for an unknown, expired or revoked token or a
 * locked user. The owner's permissions are read now, not when the token was made, so a revoked
 * grant also leaves every token of the user.
 */
export async function authenticateToken(
  db: Queryable,
  token: string,
): Promise<Principal | undefined> {
  const rows = await db.query<{
    token_id: string;
    user_id: string;
    name: string;
    email: string;
    permissions: string[] | null;
    expires_at: Date;
    owner_permissions: string[];
  }>(
    `SELECT t.token_id, t.user_id, u.name, u.email, t.permissions, t.expires_at,
       ARRAY(SELECT p.permission FROM user_privileges p WHERE p.user_id = t.user_id
             ORDER BY p.permission) AS owner_permissions
     FROM api_tokens t JOIN users u ON u.user_id = t.user_id
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND NOT u.locked`,
    [tokenHash(token)],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    userId: row.user_id,
    name: row.name,
    email: row.email,
    tokenId: row.token_id,
    permissions: effectivePermissions(row.owner_permissions, row.permissions),
    tokenSubset: row.permissions,
    tokenExpiresAt: row.expires_at,
  };
}

export async function listTokens(db: Queryable, userId: string): Promise<TokenRecord[]> {
  return await db.query<TokenRecord>(
    `SELECT ${COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC`,
    [userId],
  );
}

export async function getToken(db: Queryable, tokenId: string): Promise<TokenRecord | undefined> {
  const rows = await db.query<TokenRecord>(
    `SELECT ${COLUMNS} FROM api_tokens WHERE token_id = $1`,
    [tokenId],
  );
  return rows[0];
}

/** Revokes a token; revoking an already revoked token keeps its first revocation time. */
export async function revokeToken(
  db: Queryable,
  tokenId: string,
): Promise<TokenRecord | undefined> {
  const rows = await db.query<TokenRecord>(
    `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE token_id = $1
     RETURNING ${COLUMNS}`,
    [tokenId],
  );
  return rows[0];
}
