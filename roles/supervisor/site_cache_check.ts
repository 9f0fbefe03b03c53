/**
 * Checks that the site-cache blobs a job boots from still hash to their digests, so a blob
 * damaged on this machine's disk fails the job with a clear message instead of booting (or
 * crashing) a guest from bad bytes. Hashing every blob for every job would cost ~0.7 s per
 * gigabyte (SHA-256 runs at ~1.4 GB/s here), so a blob is hashed again only when its file is
 * not the one last verified (inode, size, mtime or ctime differ), and once per process. A blob
 * that fails is deleted, so the next job fetches it again.
 */
import type { BlobStore } from "../../lib/store/mod.ts";
import { HostStartError } from "./host_driver.ts";

export class SiteCacheCheck {
  /** Digest -> identity of the file that last verified. */
  readonly #verified = new Map<string, string>();

  constructor(
    private readonly store: BlobStore,
    /** The blob's file in the site cache. */
    readonly fileOf: (digest: string) => string,
  ) {}

  /** Resolves when every blob is present and intact; else HostStartError naming the blob. */
  async check(imageId: string, digests: string[]): Promise<void> {
    for (const digest of digests) {
      const before = await this.#identity(digest);
      if (before === undefined) {
        throw new HostStartError(
          `Cannot start a VM: blob ${digest} of image "${imageId}" is not in the site cache`,
        );
      }
      if (this.#verified.get(digest) === before) continue;
      if (!await this.store.verify(digest)) {
        this.#verified.delete(digest);
        await this.store.delete(digest);
        throw new HostStartError(
          `Cannot start a VM: blob ${digest} of image "${imageId}" in the site cache does not ` +
            "match its digest (damaged on this machine's disk); it was removed and will be " +
            "fetched again by the next job",
        );
      }
      // A file replaced while it was hashed is hashed again next time.
      if (await this.#identity(digest) === before) this.#verified.set(digest, before);
    }
  }

  async #identity(digest: string): Promise<string | undefined> {
    try {
      const info = await Deno.stat(this.fileOf(digest));
      return [info.ino, info.size, info.mtime?.getTime(), info.ctime?.getTime()].join("/");
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }
}
