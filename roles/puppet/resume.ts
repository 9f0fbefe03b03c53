/**
 * What a puppet does to its host after a warm start (`restored` from its supervisor), before it
 * authenticates anew: a VM resumed from a snapshot wakes up with the snapshot's clock (possibly
 * days old: TLS certificate checks and timestamps in the workload would go wrong) and with the
 * snapshot's kernel random generator, the same in every VM resumed from it. Both need root.
 */
import { Buffer } from "node:buffer";
import type { Restored } from "../../lib/protocol/puppet.ts";
import { PuppetError } from "./errors.ts";

/** Below this drift the clock is left alone (a resume takes well under a second). */
const CLOCK_TOLERANCE_MS = 1_000;
/** `RNDRESEEDCRNG` from <linux/random.h>: `_IO('R', 0x07)`. */
const RNDRESEEDCRNG = 0x5207n;

export async function resumeHost(restored: Restored): Promise<void> {
  await reseedRandom(Buffer.from(restored.entropy, "base64"));
  await setSystemClock(restored.time_ms);
}

/**
 * Mixes `entropy` into the kernel's input pool (a write to /dev/urandom) and makes the kernel
 * rekey its generator from that pool now (`RNDRESEEDCRNG`), rather than at its next scheduled
 * reseed up to a minute later.
 */
async function reseedRandom(entropy: Uint8Array): Promise<void> {
  try {
    await Deno.writeFile("/dev/urandom", entropy);
  } catch (error) {
    throw new PuppetError("entropy", `Cannot reseed the random generator: ${error}`, {
      cause: error,
    });
  }
  const libc = Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    ioctl: { parameters: ["i32", "u64"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
  try {
    const fd = libc.symbols.open(new TextEncoder().encode("/dev/urandom\0"), 0);
    if (fd < 0) throw new PuppetError("entropy", "Cannot reseed the random generator: open failed");
    const result = libc.symbols.ioctl(fd, RNDRESEEDCRNG);
    libc.symbols.close(fd);
    if (result !== 0) {
      throw new PuppetError(
        "entropy",
        "Cannot reseed the random generator: ioctl RNDRESEEDCRNG failed (not root?)",
      );
    }
  } finally {
    libc.close();
  }
}

/** Sets the system clock with `date -s @SECONDS` (GNU coreutils and busybox alike). */
async function setSystemClock(timeMs: number): Promise<void> {
  if (Math.abs(Date.now() - timeMs) < CLOCK_TOLERANCE_MS) return;
  // Whole seconds: busybox's date takes no fraction.
  const seconds = Math.round(timeMs / 1000);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("date", { args: ["-u", "-s", `@${seconds}`] }).output();
  } catch (error) {
    throw new PuppetError("clock", `Cannot set the clock: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!output.success) {
    throw new PuppetError(
      "clock",
      `Cannot set the clock: date -s exited with ${output.code}: ` +
        new TextDecoder().decode(output.stderr).trim(),
    );
  }
}
