/**
 * Permission checks in Treadmill's vocabulary. `admin` grants everything; a per-id permission
 * (`stop_job:<id>`) also matches when granted with `*` as the id (`run_job_on_supervisor:*`).
 */

/** Who is making a request: the token's user and the token's effective permissions. */
export interface Principal {
  userId: string;
  name: string;
  email: string;
  tokenId: string;
  /** The token's effective permissions: what every check uses. */
  permissions: readonly string[];
  /** The token's own subset, or null when it carries all of its owner's permissions. */
  tokenSubset: readonly string[] | null;
  tokenExpiresAt: Date;
}

/** Whether a set of granted permissions includes `permission`. */
export function grants(granted: readonly string[], permission: string): boolean {
  if (granted.includes("admin") || granted.includes(permission)) return true;
  const colon = permission.indexOf(":");
  return colon > 0 && granted.includes(`${permission.slice(0, colon)}:*`);
}

/** Whether the principal holds `permission`. */
export function hasPermission(principal: Principal, permission: string): boolean {
  return grants(principal.permissions, permission);
}

/**
 * The permissions a token carries: its owner's, narrowed to the token's own subset when it
 * has one. A subset can never widen what the owner holds.
 */
export function effectivePermissions(
  ownerPermissions: readonly string[],
  tokenSubset: readonly string[] | null,
): string[] {
  if (tokenSubset === null) return [...ownerPermissions];
  return tokenSubset.filter((permission) => grants(ownerPermissions, permission));
}
