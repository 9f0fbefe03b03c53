import { assertEquals, assertRejects, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { blobPath, openDirectoryStore, sha256Bytes } from "../../lib/store/mod.ts";
import { HostStartError } from "./host_driver.ts";
import { SiteCacheCheck } from "./site_cache_check.ts";

async function withCache(
  fn: (check: SiteCacheCheck, digest: string, file: string, dir: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "tml-site-cache-" });
  try {
    const store = await openDirectoryStore(dir);
    const bytes = new TextEncoder().encode("a layer of a disk image\n".repeat(1000));
    const digest = sha256Bytes(bytes);
    await store.put(digest, ReadableStream.from([bytes]));
    const fileOf = (d: string) => `${dir}/${blobPath(d)}`;
    await fn(new SiteCacheCheck(store, fileOf), digest, fileOf(digest), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SiteCacheCheck passes intact blobs and refuses a missing one by name", () =>
  withCache(async (check, digest) => {
    await check.check("image-1", [digest]);
    await check.check("image-1", [digest]);
    const missing = "e".repeat(64);
    const error = await assertRejects(
      () => check.check("image-1", [digest, missing]),
      HostStartError,
    );
    assertStringIncludes(
      error.message,
      `blob ${missing} of image "image-1" is not in the site cache`,
    );
  }));

Deno.test("SiteCacheCheck finds a blob damaged after it verified, and removes it", () =>
  withCache(async (check, digest, file) => {
    await check.check("image-1", [digest]);
    const bytes = await Deno.readFile(file);
    bytes[10] ^= 0x01;
    await Deno.chmod(file, 0o644);
    await Deno.writeFile(file, bytes);
    const error = await assertRejects(() => check.check("image-1", [digest]), HostStartError);
    assertStringIncludes(
      error.message,
      `blob ${digest} of image "image-1" in the site cache does not match`,
    );
    assertEquals(await Deno.stat(file).catch(() => undefined), undefined);
  }));

Deno.test("SiteCacheCheck of a fresh process hashes blobs it has not seen", () =>
  withCache(async (_check, digest, file, dir) => {
    const bytes = await Deno.readFile(file);
    bytes[0] ^= 0x01;
    await Deno.chmod(file, 0o644);
    await Deno.writeFile(file, bytes);
    const fresh = new SiteCacheCheck(await openDirectoryStore(dir), () => file);
    await assertRejects(() => fresh.check("image-1", [digest]), HostStartError);
  }));
