/**
 * Authenticates API requests by bearer token and checks permissions. Principals are cached
 * for a few seconds (`PRINCIPAL_TTL_MS`, see principal_cache.ts): expiry and a revocation
 * through the API take effect at once; locking a user, a revocation made directly in the
 * database and changed grants take effect within that TTL.
 */
import type { Context, MiddlewareHandler } from "hono";
import { hasPermission, type Principal } from "../../lib/accounts/permissions.ts";
import { authenticateToken } from "../../lib/accounts/tokens.ts";
import { tokenHash } from "../../lib/accounts/secrets.ts";
import type { AppEnv, SwitchboardDeps } from "./context.ts";
import { forbidden, unauthorized } from "./http_errors.ts";

export function authenticate(deps: SwitchboardDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) throw unauthorized();
    const hash = tokenHash(match[1]);
    let principal = deps.principals.get(hash);
    if (principal === undefined) {
      principal = await authenticateToken(deps.db, match[1]);
      if (principal !== undefined) deps.principals.set(hash, principal);
    }
    // A cached principal may outlive its token's expiry by up to the cache's TTL otherwise.
    if (principal === undefined || principal.tokenExpiresAt.getTime() <= Date.now()) {
      throw unauthorized("Cannot authenticate: the API token is unknown, expired or revoked");
    }
    c.set("principal", principal);
    await next();
  };
}

/** The caller, if it holds `permission`; a 403 naming the permission otherwise. */
export function requirePermission(
  c: Context<AppEnv>,
  permission: string,
  message?: string,
): Principal {
  const principal = c.get("principal");
  if (!hasPermission(principal, permission)) {
    throw forbidden(message ?? `Cannot do that: missing permission "${permission}"`);
  }
  return principal;
}
