/**
 * Redacts secret values from a byte stream that arrives in chunks. A secret may be split
 * across chunks, so the end of each chunk that could still be the start of a secret is held
 * back until the next chunk (or the end of the stream) decides it.
 */

const MARKER = new TextEncoder().encode("[redacted]");

export class StreamRedactor {
  readonly #secrets: Uint8Array[];
  readonly #holdBack: number;
  #held = new Uint8Array(0);

  constructor(secrets: readonly string[]) {
    const encoder = new TextEncoder();
    // Longest first, so a secret that contains another is redacted whole.
    this.#secrets = [...new Set(secrets)].filter((secret) => secret !== "")
      .map((secret) => encoder.encode(secret))
      .sort((a, b) => b.length - a.length);
    this.#holdBack = Math.max(0, (this.#secrets[0]?.length ?? 0) - 1);
  }

  /** Redacts what can be decided now; returns the bytes safe to store. */
  push(chunk: Uint8Array): Uint8Array {
    return this.#emit(concatBytes(this.#held, chunk), false);
  }

  /** The end of the stream: everything still held back, redacted. */
  flush(): Uint8Array {
    return this.#emit(this.#held, true);
  }

  #emit(buffer: Uint8Array, final: boolean): Uint8Array {
    if (this.#secrets.length === 0) {
      this.#held = new Uint8Array(0);
      return buffer;
    }
    const safeEnd = final ? buffer.length : buffer.length - this.#holdBack;
    const out: number[] = [];
    let i = 0;
    while (i < safeEnd) {
      const secret = this.#secrets.find((candidate) => startsWithAt(buffer, candidate, i));
      if (secret !== undefined) {
        for (const byte of MARKER) out.push(byte);
        i += secret.length;
      } else {
        out.push(buffer[i]);
        i++;
      }
    }
    this.#held = buffer.slice(i);
    return Uint8Array.from(out);
  }
}

function startsWithAt(buffer: Uint8Array, needle: Uint8Array, at: number): boolean {
  if (at + needle.length > buffer.length || buffer[at] !== needle[0]) return false;
  for (let k = 1; k < needle.length; k++) if (buffer[at + k] !== needle[k]) return false;
  return true;
}

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
