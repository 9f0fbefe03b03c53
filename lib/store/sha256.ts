/**
 * SHA-256 content addresses, the only code that hashes store content. node:crypto uses SHA-NI
 * and, fed 1 MiB `file.read()` blocks, hashes ~1.4 GB/s; `FsFile.readable`'s 64 KiB chunks
 * halve that, and hash-wasm or WebCrypto are slower or need the whole input in memory, so
 * files are read by hand into one reused buffer.
 */
import { createHash, type Hash } from "node:crypto";

const READ_BLOCK = 1024 * 1024;

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Bytes(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * A SHA-256 fed chunk by chunk as bytes pass (while they are written or received), counting
 * them too. `digest()` may be called once.
 */
export class Sha256Hasher {
  readonly #hash: Hash = createHash("sha256");
  #bytes = 0;

  /** Bytes hashed so far. */
  get bytes(): number {
    return this.#bytes;
  }

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
  }

  /** Lowercase hex SHA-256 of everything passed to update(). */
  digest(): string {
    return this.#hash.digest("hex");
  }
}

/**
 * Feeds `file` from its current position to its end into `hasher`, in 1 MiB blocks through
 * one buffer; returns the number of bytes read.
 */
export async function hashFileInto(file: Deno.FsFile, hasher: Sha256Hasher): Promise<number> {
  const buffer = new Uint8Array(READ_BLOCK);
  let size = 0;
  while (true) {
    const n = await file.read(buffer);
    if (n === null) return size;
    hasher.update(buffer.subarray(0, n));
    size += n;
  }
}

/** Lowercase hex SHA-256 of the file at `path`. */
export async function sha256File(path: string): Promise<string> {
  const hasher = new Sha256Hasher();
  using file = await Deno.open(path, { read: true });
  await hashFileInto(file, hasher);
  return hasher.digest();
}
