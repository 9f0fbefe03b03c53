/**
 * The switchboard's public keys, fetched from `GET /api/v1/rendezvous/keys`, and the one place
 * grants and user tokens are verified. A token naming a key not seen yet (the switchboard
 * restarted and made a new one) triggers a refetch, at most once per `minRefreshMs`, so garbage
 * tokens with made-up key ids cannot make this server hammer the switchboard. Keys already
 * fetched are kept: tokens signed before a switchboard restart stay valid until they expire.
 */
import type { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import type { Logger } from "../../lib/log.ts";
import {
  importPublicKey,
  type TokenClaims,
  tokenKeyId,
  verifyToken,
} from "../../lib/protocol/rendezvous_token.ts";

export class KeyRing {
  readonly #keys = new Map<string, CryptoKey>();
  #lastFetch = -Infinity;
  #fetching?: Promise<void>;

  constructor(
    private readonly switchboard: SwitchboardClient,
    private readonly log: Logger,
    private readonly minRefreshMs = 5_000,
  ) {}

  /** Fetches the keys now; false (logged) when the switchboard cannot be reached. */
  async refresh(): Promise<boolean> {
    this.#fetching ??= this.#fetch().finally(() => (this.#fetching = undefined));
    await this.#fetching;
    return this.#keys.size > 0;
  }

  /** The token's claims; a `TokenError` when it is malformed, forged, expired or unknown. */
  async verify(token: string): Promise<TokenClaims> {
    const kid = tokenKeyId(token);
    if (
      kid !== undefined && !this.#keys.has(kid) &&
      performance.now() - this.#lastFetch >= this.minRefreshMs
    ) {
      await this.refresh();
    }
    return await verifyToken(token, this.#keys);
  }

  async #fetch(): Promise<void> {
    this.#lastFetch = performance.now();
    try {
      const { keys } = await this.switchboard.rendezvousKeys();
      for (const key of keys) {
        if (!this.#keys.has(key.kid)) this.#keys.set(key.kid, await importPublicKey(key));
      }
    } catch (error) {
      this.log.warn("cannot fetch the switchboard's signing keys", {
        switchboard: this.switchboard.baseUrl,
        error: (error as Error).message,
      });
    }
  }
}
