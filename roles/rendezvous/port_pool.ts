/**
 * Hands out public TCP ports from the configured range, as open listeners. The search starts
 * after the last port handed out, so a port just released (whose job ended) is the last to be
 * reused: a user still holding the old endpoint reaches nothing rather than another job. A port
 * that something else on the machine holds is skipped.
 */

export class PortPool {
  #next: number;
  readonly #inUse = new Set<number>();

  constructor(
    private readonly hostname: string,
    private readonly first: number,
    private readonly last: number,
  ) {
    this.#next = first;
  }

  /** A listener on a free port of the range; undefined when every port is taken. */
  listen(): Deno.TcpListener | undefined {
    const size = this.last - this.first + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#next;
      this.#next = port === this.last ? this.first : port + 1;
      if (this.#inUse.has(port)) continue;
      try {
        const listener = Deno.listen({ hostname: this.hostname, port, transport: "tcp" });
        this.#inUse.add(port);
        return listener;
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      }
    }
    return undefined;
  }

  /** Closes a listener from `listen` and returns its port to the pool. */
  release(listener: Deno.TcpListener): void {
    this.#inUse.delete(listener.addr.port);
    try {
      listener.close();
    } catch {
      // Already closed.
    }
  }

  get range(): string {
    return `${this.first}-${this.last}`;
  }
}
