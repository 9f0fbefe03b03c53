/**
 * What a puppet does to its host after a warm start (`restored` from its supervisor), before it
 * authenticates anew: a VM resumed from a snapshot wakes up with the snapshot's clock (possibly
 * days old: TLS certificate checks and timestamps in the workload would go wrong) and with the
 * snapshot's kernel random generator, the same in every VM resumed from it. Both need root.
 *
 * Both are system calls through libc (FFI). The library is opened when the puppet starts, so
 * in a VM it is already open in the snapshot: a resumed VM runs on a cold QEMU translation
 * cache, where opening it took ~0.2 s and running `date -s` another ~0.1 s (measured).
 */
import type { Restored } from "../../lib/protocol/puppet.ts";
import { PuppetError } from "./errors.ts";

/** `RNDRESEEDCRNG` from <linux/random.h>: `_IO('R', 0x07)`. */
const RNDRESEEDCRNG = 0x5207n;
const CLOCK_REALTIME = 0;
const O_WRONLY = 1;

const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ioctl: { parameters: ["i32", "u64"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  clock_settime: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

export class HostResume {
  private constructor(private readonly libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>) {}

  /** Opens libc; undefined (and resumes are then not handled) where it cannot be opened. */
  static open(): HostResume | undefined {
    try {
      return new HostResume(Deno.dlopen("libc.so.6", LIBC_SYMBOLS));
    } catch {
      return undefined;
    }
  }

  /** Reseeds the random generator, then sets the clock to the supervisor's. */
  resume(restored: Restored): void {
    this.#reseedRandom(Uint8Array.from(atob(restored.entropy), (char) => char.charCodeAt(0)));
    this.#setClock(restored.time_ms);
  }

  /**
   * Mixes `entropy` into the kernel's input pool (a write to /dev/urandom) and makes the kernel
   * rekey its generator from that pool now (`RNDRESEEDCRNG`), rather than at its next scheduled
   * reseed up to a minute later.
   */
  #reseedRandom(entropy: Uint8Array): void {
    const { open, write, ioctl, close } = this.libc.symbols;
    const fd = open(new TextEncoder().encode("/dev/urandom\0"), O_WRONLY);
    if (fd < 0) throw new PuppetError("entropy", "Cannot reseed the random generator: open failed");
    try {
      if (write(fd, entropy, BigInt(entropy.length)) !== BigInt(entropy.length)) {
        throw new PuppetError("entropy", "Cannot reseed the random generator: write failed");
      }
      if (ioctl(fd, RNDRESEEDCRNG) !== 0) {
        throw new PuppetError(
          "entropy",
          "Cannot reseed the random generator: ioctl RNDRESEEDCRNG failed (not root?)",
        );
      }
    } finally {
      close(fd);
    }
  }

  #setClock(timeMs: number): void {
    const timespec = new BigInt64Array([
      BigInt(Math.floor(timeMs / 1000)),
      BigInt((timeMs % 1000) * 1_000_000),
    ]);
    if (this.libc.symbols.clock_settime(CLOCK_REALTIME, timespec) !== 0) {
      throw new PuppetError("clock", "Cannot set the clock: clock_settime failed (not root?)");
    }
  }
}
