/**
 * The signed tokens of the rendezvous proxy: grants (a supervisor and the job it runs now) and
 * user tokens (one job, short-lived). The switchboard signs them with an Ed25519 key and
 * publishes the public key (`GET /api/v1/rendezvous/keys`), so a rendezvous server verifies
 * them offline: no round trip per connection, and it holds no secret of the switchboard's.
 *
 * A token is `base64url(claims JSON) "." base64url(signature over the first part)`; the claims
 * name the key (`kid`) and the token's kind (`typ`), so a user token is never taken for a grant.
 * Times (`iat`, `exp`) are milliseconds since the epoch.
 */
import { Buffer } from "node:buffer";
import { z } from "zod";
import { TmlError } from "../errors.ts";
import type { RendezvousPublicKey } from "./api.ts";
import { Uuid } from "./common.ts";

const Times = { iat: z.number().int(), exp: z.number().int() };
/** Longer tokens are refused unread: a bound on the work garbage can cause. */
const MAX_TOKEN_CHARS = 4096;

export const UserTokenClaims = z.strictObject({
  typ: z.literal("rendezvous_user"),
  kid: z.string().max(64),
  job_id: Uuid,
  user_id: Uuid,
  ...Times,
});
export type UserTokenClaims = z.infer<typeof UserTokenClaims>;

export const GrantClaims = z.strictObject({
  typ: z.literal("rendezvous_grant"),
  kid: z.string().max(64),
  supervisor_id: Uuid,
  job_id: Uuid.nullable(),
  ...Times,
});
export type GrantClaims = z.infer<typeof GrantClaims>;

export const TokenClaims = z.discriminatedUnion("typ", [UserTokenClaims, GrantClaims]);
export type TokenClaims = z.infer<typeof TokenClaims>;

/** A token that cannot be trusted; the message says why, never the token. */
export class TokenError extends TmlError {
  constructor(code: "invalid_token" | "unknown_key" | "expired_token", message: string) {
    super(code, message, { status: 401 });
  }
}

/** Signs tokens with an Ed25519 key pair made at start; a restart makes a new one. */
export class TokenSigner {
  private constructor(
    private readonly privateKey: CryptoKey,
    readonly publicKey: RendezvousPublicKey,
  ) {}

  static async generate(): Promise<TokenSigner> {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
    return new TokenSigner(pair.privateKey, {
      kid: Buffer.from(digest.subarray(0, 12)).toString("base64url"),
      alg: "Ed25519",
      public_key: Buffer.from(raw).toString("base64url"),
    });
  }

  async sign(claims: DistributiveOmit<TokenClaims, "kid">): Promise<string> {
    const body = Buffer.from(JSON.stringify({ ...claims, kid: this.publicKey.kid }))
      .toString("base64url");
    const signature = await crypto.subtle.sign(
      "Ed25519",
      this.privateKey,
      new TextEncoder().encode(body),
    );
    return `${body}.${Buffer.from(signature).toString("base64url")}`;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export function importPublicKey(key: RendezvousPublicKey): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    Buffer.from(key.public_key, "base64url"),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
}

/** The kid a token claims to be signed with, unverified: to pick (or fetch) the key. */
export function tokenKeyId(token: string): string | undefined {
  return readClaims(token)?.kid;
}

/** The claims of a token signed by one of `keys` (by kid) and not expired at `now` (ms). */
export async function verifyToken(
  token: string,
  keys: ReadonlyMap<string, CryptoKey>,
  now = Date.now(),
): Promise<TokenClaims> {
  const claims = readClaims(token);
  if (claims === undefined) {
    throw new TokenError("invalid_token", "Cannot verify token: it is malformed");
  }
  const key = keys.get(claims.kid);
  if (key === undefined) {
    throw new TokenError(
      "unknown_key",
      `Cannot verify token: it is signed by unknown key "${claims.kid}"`,
    );
  }
  const dot = token.indexOf(".");
  const valid = await crypto.subtle.verify(
    "Ed25519",
    key,
    Buffer.from(token.slice(dot + 1), "base64url"),
    new TextEncoder().encode(token.slice(0, dot)),
  );
  if (!valid) throw new TokenError("invalid_token", "Cannot verify token: it has a bad signature");
  if (claims.exp <= now) {
    throw new TokenError(
      "expired_token",
      `Cannot verify token: it expired at ${new Date(claims.exp).toISOString()}`,
    );
  }
  return claims;
}

function readClaims(token: string): TokenClaims | undefined {
  const dot = token.indexOf(".");
  if (dot < 1 || token.length > MAX_TOKEN_CHARS) return undefined;
  try {
    const parsed = TokenClaims.safeParse(
      JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString()),
    );
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
