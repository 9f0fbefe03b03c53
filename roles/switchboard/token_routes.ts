/**
 * `/api/v1/tokens` (login, create, list, revoke) and `/api/v1/whoami`. Login answers a wrong
 * password and an unknown user alike, in the same time, and is rate-limited per user and per
 * client address.
 */
import { type Context, Hono } from "hono";
import { getConnInfo } from "hono/deno";
import { burnVerification, verifyPassword } from "../../lib/accounts/passwords.ts";
import { hasPermission } from "../../lib/accounts/permissions.ts";
import {
  createToken,
  getToken,
  listTokens,
  revokeToken,
  type TokenRecord,
} from "../../lib/accounts/tokens.ts";
import { findUser } from "../../lib/accounts/users.ts";
import {
  CreateTokenRequest,
  ListTokensQuery,
  LoginRequest,
  type TokenCreated,
  type TokenInfo,
  type WhoAmI,
} from "../../lib/protocol/api.ts";
import { authenticate } from "./auth.ts";
import type { AppEnv, SwitchboardDeps } from "./context.ts";
import { ApiError, notFound, unauthorized } from "./http_errors.ts";
import { LoginLimiter } from "./login_limiter.ts";
import { readJsonBody, readPathUuid, readQuery } from "./request_input.ts";

const LOGIN_TOKEN_LIFETIME_MS = 7 * 86_400_000;
const CREATED_TOKEN_LIFETIME_MS = 30 * 86_400_000;

export function tokenRoutes(deps: SwitchboardDeps, limiter = new LoginLimiter()): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post("/login", async (c) => {
    const request = await readJsonBody(c, LoginRequest, deps.config.max_body_bytes);
    const user = await findUser(deps.db, request.user);
    // Keyed by user id, so alternating a user's name and email buys no extra guesses.
    const attempt = limiter.begin(user?.user_id ?? request.user.toLowerCase(), clientAddress(c));
    if (!attempt.allowed) {
      c.header("Retry-After", String(Math.ceil(attempt.retryAfterMs / 1000)));
      throw new ApiError(
        429,
        "too_many_attempts",
        "Cannot log in: too many failed attempts; try again later",
      );
    }
    const valid = user === undefined
      ? (await burnVerification(request.password), false)
      : await verifyPassword(user.password_hash, request.password);
    if (user === undefined || !valid || user.locked) {
      deps.log.warn("login failed", { address: clientAddress(c) });
      throw unauthorized("Cannot log in: wrong user or password, or the user is locked");
    }
    attempt.succeeded();
    const { token, record } = await createToken(deps.db, {
      userId: user.user_id,
      expiresInMs: request.expires_in ?? LOGIN_TOKEN_LIFETIME_MS,
      description: "login",
    });
    deps.log.info("login", { user_id: user.user_id, token_id: record.token_id });
    return c.json(created(token, record), 201);
  });

  app.use("/", authenticate(deps));
  app.use("/:id", authenticate(deps));

  app.post("/", async (c) => {
    const principal = c.get("principal");
    const request = await readJsonBody(c, CreateTokenRequest, deps.config.max_body_bytes);
    const { token, record } = await createToken(deps.db, {
      userId: principal.userId,
      expiresInMs: request.expires_in ?? CREATED_TOKEN_LIFETIME_MS,
      // A limited token cannot create one that outlives it, so its default is capped.
      shortenToCreator: request.expires_in === undefined,
      permissions: request.permissions ?? null,
      description: request.description,
      creator: principal,
    });
    deps.log.info("token created", { user_id: principal.userId, token_id: record.token_id });
    return c.json(created(token, record), 201);
  });

  app.get("/", async (c) => {
    const principal = c.get("principal");
    const { user_id: userId } = readQuery(c, ListTokensQuery);
    if (userId !== undefined && userId !== principal.userId && !hasPermission(principal, "admin")) {
      throw new ApiError(
        403,
        "forbidden",
        `Cannot list tokens of another user: missing permission "admin"`,
      );
    }
    const tokens = await listTokens(deps.db, userId ?? principal.userId);
    return c.json({ tokens: tokens.map(info) });
  });

  app.delete("/:id", async (c) => {
    const principal = c.get("principal");
    const tokenId = readPathUuid(c, "id");
    const token = await getToken(deps.db, tokenId);
    if (
      token === undefined ||
      (token.user_id !== principal.userId && !hasPermission(principal, "admin"))
    ) {
      throw notFound(`Cannot find token "${tokenId}"`);
    }
    const revoked = await revokeToken(deps.db, tokenId);
    deps.principals.forgetToken(tokenId);
    deps.log.info("token revoked", { token_id: tokenId, by: principal.userId });
    return c.json(info(revoked!));
  });
  return app;
}

export function whoamiRoutes(deps: SwitchboardDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/", authenticate(deps), (c) => {
    const principal = c.get("principal");
    return c.json<WhoAmI>({
      user_id: principal.userId,
      name: principal.name,
      email: principal.email,
      token_id: principal.tokenId,
      permissions: [...principal.permissions],
    });
  });
  return app;
}

function created(token: string, record: TokenRecord): TokenCreated {
  return {
    token_id: record.token_id,
    token,
    user_id: record.user_id,
    expires_at: record.expires_at.toISOString(),
    permissions: record.permissions,
  };
}

function info(record: TokenRecord): TokenInfo {
  return {
    token_id: record.token_id,
    description: record.description,
    created_at: record.created_at.toISOString(),
    expires_at: record.expires_at.toISOString(),
    revoked_at: record.revoked_at?.toISOString() ?? null,
    permissions: record.permissions,
  };
}

function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}
