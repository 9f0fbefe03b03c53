/**
 * Rate limits failed logins, per user and per client address, in a sliding window. In memory:
 * a restart forgets, which is acceptable for slowing down guessing, not for auditing.
 *
 * An attempt counts as a failure from the moment it starts until it succeeds, so a burst of
 * concurrent guesses cannot slip past the limit while their passwords are being verified.
 */

export interface LoginLimits {
  perUser: number;
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perUser: 5,
  perAddress: 20,
  windowMs: 15 * 60_000,
};

/** Past this many tracked keys, stale ones are swept and then the oldest dropped. */
const MAX_KEYS = 10_000;

export type LoginAttempt =
  | { allowed: false; retryAfterMs: number }
  | { allowed: true; succeeded(): void };

export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();

  constructor(
    private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Starts an attempt for `user` (a stable key: the user's id, or the lower-cased login when
   * no such user exists) from `address`. Refused when either has used up its failures.
   */
  begin(user: string, address: string): LoginAttempt {
    const userKey = `user:${user}`;
    const addressKey = `address:${address}`;
    const wait = Math.max(
      this.#wait(userKey, this.limits.perUser),
      this.#wait(addressKey, this.limits.perAddress),
    );
    if (wait > 0) return { allowed: false, retryAfterMs: wait };
    const at = this.now();
    this.#record(userKey, at);
    this.#record(addressKey, at);
    return {
      allowed: true,
      succeeded: () => {
        // A success clears the user's failures and takes back this attempt's mark on the
        // address; the address keeps its other failures.
        this.#failures.delete(userKey);
        const times = this.#failures.get(addressKey);
        const index = times?.indexOf(at) ?? -1;
        if (index >= 0) times!.splice(index, 1);
      },
    };
  }

  /** How many keys are tracked (for tests of the memory bound). */
  get size(): number {
    return this.#failures.size;
  }

  #record(key: string, at: number): void {
    const times = this.#recent(key);
    times.push(at);
    this.#failures.delete(key); // re-insert, so Map order is least recently failed first
    if (this.#failures.size >= MAX_KEYS) this.#sweep();
    this.#failures.set(key, times);
  }

  #wait(key: string, limit: number): number {
    const times = this.#recent(key);
    if (times.length < limit) return 0;
    return times[times.length - limit] + this.limits.windowMs - this.now();
  }

  #recent(key: string): number[] {
    const cutoff = this.now() - this.limits.windowMs;
    const times = (this.#failures.get(key) ?? []).filter((time) => time > cutoff);
    if (times.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, times);
    return times;
  }

  #sweep(): void {
    for (const key of [...this.#failures.keys()]) this.#recent(key);
    for (const key of this.#failures.keys()) {
      if (this.#failures.size < MAX_KEYS) break;
      this.#failures.delete(key);
    }
  }
}
