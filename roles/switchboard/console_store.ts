/**
 * Stores each job's console: chunks from its supervisor, redacted of the job's secret values
 * as they are ingested, bounded per job, and readable by byte offset while it grows. A chunk
 * carries the supervisor's raw offset, so a resent chunk (after a reconnect) is stored once.
 */
import type { Database } from "../../lib/db/database.ts";
import { concatBytes, StreamRedactor } from "./console_redaction.ts";
import { KeyedChain, KeyedWaiters } from "./keyed.ts";
import type { JobRow } from "./job_row.ts";

interface ConsoleState {
  raw: number;
  stored: number;
  redactor: StreamRedactor;
  finished: boolean;
}

export class ConsoleStore {
  readonly #states = new Map<string, ConsoleState>();
  readonly #chain = new KeyedChain();
  readonly #waiters = new KeyedWaiters<true>();

  constructor(private readonly db: Database, private readonly maxBytes: number) {}

  /** Appends the part of `bytes` (at raw `offset`) not stored yet. */
  ingest(job: JobRow, offset: number, bytes: Uint8Array): Promise<void> {
    return this.#chain.run(job.job_id, async () => {
      const state = await this.#state(job);
      if (state.finished) return;
      const fresh = offset + bytes.length - state.raw;
      if (fresh <= 0) return; // Already stored: a resent chunk.
      const redacted = state.redactor.push(
        bytes.subarray(bytes.length - Math.min(fresh, bytes.length)),
      );
      state.raw += Math.min(fresh, bytes.length);
      await this.#write(job.job_id, state, redacted);
    });
  }

  /** The job ended: store what the redactor held back, and wake every follower. */
  finish(job: JobRow): Promise<void> {
    return this.#chain.run(job.job_id, async () => {
      const state = await this.#state(job);
      if (!state.finished) await this.#write(job.job_id, state, state.redactor.flush());
      state.finished = true;
      this.#states.delete(job.job_id);
      this.#wake(job.job_id);
    });
  }

  /** Stored console bytes from `offset` on, and the offset after them. */
  async read(
    jobId: string,
    offset: number,
  ): Promise<{ data: Uint8Array<ArrayBuffer>; next: number }> {
    const rows = await this.db.query<{ byte_offset: number; data: Uint8Array }>(
      `SELECT byte_offset, data FROM job_console
       WHERE job_id = $1 AND byte_offset + length(data) > $2 ORDER BY byte_offset`,
      [jobId, offset],
    );
    const parts = rows.map((row) => row.data.subarray(Math.max(0, offset - row.byte_offset)));
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      data.set(part, at);
      at += part.length;
    }
    return { data, next: offset + total };
  }

  /** Resolves when the job's console grows or ends, or after `timeoutMs`. */
  async waitForMore(jobId: string, timeoutMs: number): Promise<void> {
    await this.#waiters.wait(jobId, timeoutMs);
  }

  async #write(jobId: string, state: ConsoleState, redacted: Uint8Array): Promise<void> {
    let data = redacted.subarray(0, Math.max(0, this.maxBytes - state.stored));
    if (data.length < redacted.length) {
      data = concatBytes(
        data,
        new TextEncoder().encode(`\n[tml: console truncated at ${this.maxBytes} bytes]\n`),
      );
    }
    if (state.stored >= this.maxBytes) data = new Uint8Array(0);
    const at = state.stored;
    state.stored += data.length;
    if (data.length === 0) {
      await this.db.query(`UPDATE jobs SET console_raw_bytes = $2 WHERE job_id = $1`, [
        jobId,
        state.raw,
      ]);
      return;
    }
    await this.db.query(
      `WITH chunk AS (INSERT INTO job_console (job_id, byte_offset, data) VALUES ($1, $2, $3))
       UPDATE jobs SET console_raw_bytes = $4, console_bytes = $5 WHERE job_id = $1`,
      [jobId, at, data, state.raw, state.stored],
    );
    this.#wake(jobId);
  }

  async #state(job: JobRow): Promise<ConsoleState> {
    let state = this.#states.get(job.job_id);
    if (state === undefined) {
      const [row] = await this.db.query<{ console_raw_bytes: number; console_bytes: number }>(
        `SELECT console_raw_bytes, console_bytes FROM jobs WHERE job_id = $1`,
        [job.job_id],
      );
      const secrets = Object.values(job.parameters).filter((p) => p.secret).map((p) => p.value);
      state = {
        raw: row?.console_raw_bytes ?? 0,
        stored: row?.console_bytes ?? 0,
        redactor: new StreamRedactor(secrets),
        finished: false,
      };
      this.#states.set(job.job_id, state);
    }
    return state;
  }

  #wake(jobId: string): void {
    this.#waiters.wake(jobId, true);
  }
}
