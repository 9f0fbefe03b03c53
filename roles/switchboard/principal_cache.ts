/**
 * Remembers authenticated principals for a few seconds, keyed by the token's SHA-256, so a busy
 * client (a CI fleet enqueueing) does not cost a database lookup per request. A revocation
 * through this switchboard drops the entry at once; a change made elsewhere (a user locked with
 * `tml admin`, a grant) takes effect within the TTL.
 */
import type { Principal } from "../../lib/accounts/permissions.ts";

export const PRINCIPAL_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

export class PrincipalCache {
  readonly #entries = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly ttlMs = PRINCIPAL_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get(tokenHash: string): Principal | undefined {
    const entry = this.#entries.get(tokenHash);
    if (entry === undefined) return undefined;
    if (entry.until <= this.now()) {
      this.#entries.delete(tokenHash);
      return undefined;
    }
    return entry.principal;
  }

  set(tokenHash: string, principal: Principal): void {
    if (this.#entries.size >= MAX_ENTRIES) {
      // Drop the oldest entry; Map iteration order is insertion order.
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(tokenHash, { principal, until: this.now() + this.ttlMs });
  }

  /** Forgets every entry of a token (by id), e.g. when it is revoked. */
  forgetToken(tokenId: string): void {
    for (const [hash, entry] of this.#entries) {
      if (entry.principal.tokenId === tokenId) this.#entries.delete(hash);
    }
  }
}
