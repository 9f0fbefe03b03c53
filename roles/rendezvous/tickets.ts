/**
 * Pairs a user connection waiting for its host with the data connection the job's supervisor
 * opens for it. A ticket is 32 random bytes, sent only over that supervisor's authenticated
 * control websocket, used once, and forgotten after `timeoutMs`; a data connection with an
 * unknown ticket is closed unread.
 */
import { Buffer } from "node:buffer";
import { RendezvousError } from "./errors.ts";

interface Pending {
  jobId: string;
  resolve(conn: Deno.Conn): void;
  reject(error: RendezvousError): void;
}

export class Tickets {
  readonly #pending = new Map<string, Pending>();

  constructor(private readonly timeoutMs: number) {}

  /** A new ticket for a connection to `jobId`; `connection` settles when it is brought through. */
  issue(jobId: string): { ticket: string; connection: Promise<Deno.Conn> } {
    const ticket = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    const connection = new Promise<Deno.Conn>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#take(ticket)?.reject(
          new RendezvousError(
            "unavailable",
            `Cannot connect: the supervisor did not bring the connection through within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
      this.#pending.set(ticket, {
        jobId,
        resolve: (conn) => {
          clearTimeout(timer);
          resolve(conn);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    return { ticket, connection };
  }

  /** Hands a data connection to the user connection waiting for it; false for a stale ticket. */
  deliver(ticket: string, conn: Deno.Conn): boolean {
    const pending = this.#take(ticket);
    pending?.resolve(conn);
    return pending !== undefined;
  }

  /** Fails one ticket, if it belongs to `jobId` (a supervisor can only fail its own). */
  fail(ticket: string, jobId: string, error: RendezvousError): void {
    if (this.#pending.get(ticket)?.jobId === jobId) this.#take(ticket)!.reject(error);
  }

  /** Fails every ticket of a job (its supervisor went away, or the job was withdrawn). */
  failJob(jobId: string, error: RendezvousError): void {
    for (const [ticket, pending] of this.#pending) {
      if (pending.jobId === jobId) this.#take(ticket)!.reject(error);
    }
  }

  #take(ticket: string): Pending | undefined {
    const pending = this.#pending.get(ticket);
    this.#pending.delete(ticket);
    return pending;
  }
}
