/**
 * `tml image verify <store dir>`: re-hashes every blob and manifest of a local store and
 * checks that every blob a manifest names is there. Prints a JSON report on stdout, one line
 * per problem on stderr, and exits 1 when anything is wrong.
 */
import { note, printJson } from "../../../lib/cli/output.ts";
import { openDirectoryStore } from "../../../lib/store/blob_store.ts";
import { imageIdOf, parseManifest } from "../../../lib/store/manifest.ts";
import { describeError } from "../../../lib/errors.ts";
import { ImageCommandError } from "./errors.ts";
import { transferProgress } from "./progress.ts";

export async function verifyCommand(dir: string): Promise<void> {
  const isDir = await Deno.stat(dir).then((info) => info.isDirectory, () => false);
  if (!isDir) {
    throw new ImageCommandError("invalid_store", `Cannot verify "${dir}": not a directory`, {
      field: "store_dir",
    });
  }
  const store = openDirectoryStore(dir);
  const corruptImages: { image_id: string; problem: string }[] = [];
  const referenced = new Map<string, { image_id: string; label: string }[]>();
  let images = 0;
  for await (const imageId of store.listImages()) {
    images++;
    try {
      const bytes = await store.readManifestBytes(imageId);
      if (bytes === undefined) continue;
      const actual = imageIdOf(bytes);
      if (actual !== imageId) throw new Error(`its bytes hash to "${actual}"`);
      for (const [label, blob] of Object.entries(parseManifest(bytes).blobs)) {
        const users = referenced.get(blob.sha256) ?? [];
        users.push({ image_id: imageId, label });
        referenced.set(blob.sha256, users);
      }
    } catch (error) {
      corruptImages.push({ image_id: imageId, problem: describeError(error) });
      note(`tml: image "${imageId}" is corrupt: ${describeError(error)}`);
    }
  }

  const blobs = await Array.fromAsync(store.listBlobs());
  const total = blobs.reduce((sum, blob) => sum + blob.size, 0);
  const progress = transferProgress("verify", total);
  const corruptBlobs: string[] = [];
  try {
    for (const blob of blobs) {
      if (!await store.verify(blob.digest)) {
        corruptBlobs.push(blob.digest);
        note(`tml: blob "${blob.digest}" is corrupt: its bytes do not hash to its name`);
      }
      progress.add(blob.size);
    }
  } finally {
    progress.stop();
  }

  const present = new Set(blobs.map((blob) => blob.digest));
  const missingBlobs = [...referenced].filter(([digest]) => !present.has(digest)).flatMap((
    [sha256, users],
  ) => users.map((user) => ({ ...user, sha256 })));
  for (const missing of missingBlobs) {
    note(
      `tml: image "${missing.image_id}" names blob "${missing.label}" (${missing.sha256}), which is missing`,
    );
  }
  const ok = corruptImages.length === 0 && corruptBlobs.length === 0 && missingBlobs.length === 0;
  printJson({
    ok,
    images,
    blobs: blobs.length,
    bytes_checked: total,
    corrupt_images: corruptImages,
    corrupt_blobs: corruptBlobs,
    missing_blobs: missingBlobs,
  });
  if (!ok) {
    throw new ImageCommandError(
      "store_damaged",
      `Store "${dir}" is damaged: ${corruptImages.length} corrupt images, ${corruptBlobs.length} corrupt blobs, ${missingBlobs.length} missing blobs`,
      { status: 500 },
    );
  }
}
