/**
 * Streams a file that a workload keeps appending to, from a byte offset, in chunks small enough
 * for one `workload_output` frame. Pumps are serialised; a chunk the sink fails to take is read
 * again on the next pump, so nothing is skipped across a reconnect.
 */
import { MAX_WORKLOAD_OUTPUT_BYTES } from "../../lib/protocol/puppet.ts";

export type ChunkSink = (offset: number, bytes: Uint8Array) => Promise<void>;

export class OutputTail {
  #offset: number;
  #pumping: Promise<void> = Promise.resolve();

  constructor(private readonly path: string, offset: number, private readonly sink: ChunkSink) {
    this.#offset = offset;
  }

  get offset(): number {
    return this.#offset;
  }

  /** Sends everything written so far; rejects when the sink fails. */
  pump(): Promise<void> {
    const run = this.#pumping.then(() => this.#readToEnd());
    this.#pumping = run.catch(() => {});
    return run;
  }

  async #readToEnd(): Promise<void> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return; // Nothing written yet.
      throw error;
    }
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const buffer = new Uint8Array(MAX_WORKLOAD_OUTPUT_BYTES);
      while (true) {
        const read = await file.read(buffer);
        if (read === null || read === 0) return;
        await this.sink(this.#offset, buffer.slice(0, read));
        this.#offset += read;
      }
    } finally {
      file.close();
    }
  }
}
