import { assertEquals, assertThrows } from "../testing/asserts.ts";
import { StoreError } from "./errors.ts";
import { assertDigest, blobPath, imagePath, parseStorePath } from "./layout.ts";

const DIGEST = "ab12cd34ef56" + "0".repeat(51) + "9";

Deno.test("blobPath() and imagePath() fan out by the first three bytes", () => {
  assertEquals(blobPath(DIGEST), `blobs/ab/12/cd/${DIGEST}`);
  assertEquals(imagePath(DIGEST), `images/ab/12/cd/${DIGEST}`);
});

Deno.test("assertDigest() refuses anything but 64 lowercase hex digits", () => {
  assertEquals(assertDigest(DIGEST), DIGEST);
  for (
    const bad of [
      DIGEST.toUpperCase(),
      DIGEST.slice(1),
      DIGEST + "0",
      "../" + DIGEST.slice(3),
      DIGEST.slice(0, 63) + "g",
      "",
    ]
  ) {
    const error = assertThrows(() => assertDigest(bad, "image_id"), StoreError, "image_id");
    assertEquals(error.code, "invalid_digest");
    assertEquals(error.status, 400);
    assertEquals(error.field, "image_id");
    assertThrows(() => blobPath(bad), StoreError, "expected 64 lowercase hex digits");
    assertThrows(() => imagePath(bad), StoreError);
  }
});

Deno.test("parseStorePath() reads blob and image paths, with or without ./", () => {
  assertEquals(parseStorePath(blobPath(DIGEST)), { kind: "blob", digest: DIGEST });
  assertEquals(parseStorePath(`./${imagePath(DIGEST)}`), { kind: "image", digest: DIGEST });
});

Deno.test("parseStorePath() refuses every other path", () => {
  const fanOut = `ab/12/cd/${DIGEST}`;
  for (
    const bad of [
      `blobs/${DIGEST}`,
      `blobs/ab/12/${DIGEST}`,
      `blobs/ab/12/cd/ef/${DIGEST}`,
      `blobs/ab/12/ce/${DIGEST}`,
      `blobs/AB/12/cd/${DIGEST}`,
      `blobs/ab/12/cd/${DIGEST.toUpperCase()}`,
      `blobs/ab/12/cd/${DIGEST}/`,
      `blobs/ab/12/cd/${DIGEST}.part`,
      `/blobs/${fanOut}`,
      `../blobs/${fanOut}`,
      `blobs/../blobs/${fanOut}`,
      `blobs/ab/12/../12/cd/${DIGEST}`,
      `.//blobs/${fanOut}`,
      `tmp/${fanOut}`,
      `image/${fanOut}`,
      `blobs\\ab\\12\\cd\\${DIGEST}`,
      `blobs%2Fab%2F12%2Fcd%2F${DIGEST}`,
      "",
    ]
  ) {
    assertEquals(parseStorePath(bad), undefined, bad);
  }
});
