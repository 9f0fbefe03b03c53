import { assertEquals } from "../testing/asserts.ts";
import { sha256Bytes, sha256File, Sha256Hasher } from "./sha256.ts";

Deno.test("sha256Bytes() matches the FIPS 180-2 test vector", () => {
  assertEquals(
    sha256Bytes(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(sha256Bytes("abc"), sha256Bytes(new TextEncoder().encode("abc")));
});

Deno.test("sha256File() hashes files across 1 MiB read blocks and empty files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 2.5 MiB of varied bytes crosses two block boundaries and ends mid-block.
    const bytes = new Uint8Array(2.5 * 1024 * 1024).map((_, i) => (i * 31 + (i >> 11)) & 0xff);
    await Deno.writeFile(`${dir}/big`, bytes);
    assertEquals(await sha256File(`${dir}/big`), sha256Bytes(bytes));
    await Deno.writeFile(`${dir}/empty`, new Uint8Array());
    assertEquals(
      await sha256File(`${dir}/empty`),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Sha256Hasher hashes chunks as one stream and counts their bytes", () => {
  const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
  const hasher = new Sha256Hasher();
  for (const cut of [[0, 1], [1, 65_536], [65_536, 65_536], [65_536, 200_000]]) {
    hasher.update(bytes.subarray(cut[0], cut[1]));
  }
  assertEquals(hasher.bytes, 200_000);
  assertEquals(hasher.digest(), sha256Bytes(bytes));
});
