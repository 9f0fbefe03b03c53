/**
 * Rate limits failed logins, per user and per client address, in a sliding window. In memory:
 * a restart forgets, which is acceptable for slowing down guessing, not for auditing.
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

export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();

  constructor(
    private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until another attempt is allowed, or 0 when it is allowed now. */
  retryAfter(user: string, address: string): number {
    return Math.max(
      this.#wait(`user:${user.toLowerCase()}`, this.limits.perUser),
      this.#wait(`address:${address}`, this.limits.perAddress),
    );
  }

  recordFailure(user: string, address: string): void {
    for (const key of [`user:${user.toLowerCase()}`, `address:${address}`]) {
      const times = this.#recent(key);
      times.push(this.now());
      this.#failures.set(key, times);
    }
  }

  recordSuccess(user: string): void {
    this.#failures.delete(`user:${user.toLowerCase()}`);
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
    return times;
  }
}
