/**
 * Follows a VM's serial console file (QEMU's `-serial file:`) and passes on what the guest
 * writes. Bytes go out in whole lines where it can, so the console's lines and the workload's
 * output (which arrives over the puppet channel) interleave line by line in the job's log; a
 * partial line goes out once the guest has written nothing for a poll.
 */
const POLL_MS = 100;
const READ_BYTES = 64 * 1024;

export class ConsoleFollower {
  #offset = 0;
  #pending: Uint8Array = new Uint8Array(0);
  #timer?: ReturnType<typeof setInterval>;
  #reading = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly path: string,
    private readonly onBytes: (bytes: Uint8Array) => void,
  ) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#reading = this.#reading.then(() => this.#poll(false));
    }, POLL_MS);
  }

  /** Passes on everything the guest wrote, then stops. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#reading;
    await this.#poll(true);
  }

  async #poll(final: boolean): Promise<void> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch {
      return; // QEMU has not created it yet.
    }
    let fresh = 0;
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const buffer = new Uint8Array(READ_BYTES);
      while (true) {
        const n = await file.read(buffer);
        if (n === null || n === 0) break;
        this.#offset += n;
        fresh += n;
        this.#pending = concat(this.#pending, buffer.subarray(0, n));
      }
    } finally {
      file.close();
    }
    const lineEnd = this.#pending.lastIndexOf(0x0a);
    const flushAll = final || (fresh === 0 && this.#pending.length > 0);
    const cut = flushAll ? this.#pending.length : lineEnd + 1;
    if (cut <= 0) return;
    this.onBytes(this.#pending.slice(0, cut));
    this.#pending = this.#pending.slice(cut);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
