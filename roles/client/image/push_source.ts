/**
 * What `tml image push` publishes, found from the path a user gives:
 *
 *   a manifest file        push it; its blobs sit beside it
 *   a directory with
 *     manifest.toml        push that manifest; blobs sit in the directory
 *     images/…/<id>        a store layout holding exactly one image (what `tml image create`
 *                          writes); its blobs sit under blobs/
 *
 * A blob is looked up beside the manifest as `blobs/ab/cd/ef/<sha256>` (store layout), then
 * `<sha256>`, then `<label>` (the blob's label in the manifest). A blob the store already has
 * needs no local file.
 */
import { dirname, join } from "node:path";
import { openDirectoryStore } from "../../../lib/store/blob_store.ts";
import { blobPath, imagePath } from "../../../lib/store/layout.ts";
import { imageIdOf, type ImageManifest, parseManifest } from "../../../lib/store/manifest.ts";
import { ImageCommandError } from "./errors.ts";

export const MANIFEST_FILE = "manifest.toml";

export interface PushSource {
  imageId: string;
  manifestPath: string;
  bytes: Uint8Array;
  manifest: ImageManifest;
  /** Directory where the blobs are looked up. */
  blobDir: string;
}

export async function readPushSource(path: string): Promise<PushSource> {
  const info = await Deno.stat(path).catch((error) => {
    throw new ImageCommandError("invalid_source", `Cannot push "${path}": ${error.message}`, {
      field: "source",
      cause: error,
    });
  });
  if (info.isFile) return await readManifestFile(path, dirname(path));
  const manifestToml = join(path, MANIFEST_FILE);
  if (await isFile(manifestToml)) return await readManifestFile(manifestToml, path);
  const images = await imagesUnder(path);
  if (images.length === 1) return await readManifestFile(join(path, imagePath(images[0])), path);
  throw new ImageCommandError(
    "invalid_source",
    images.length === 0
      ? `Cannot push "${path}": it holds no ${MANIFEST_FILE} and no image in store layout`
      : `Cannot push "${path}": it holds ${images.length} images; give the manifest file instead`,
    { field: "source" },
  );
}

/** The local file of a blob, or undefined when there is none. */
export async function findBlobFile(
  source: PushSource,
  label: string,
  digest: string,
): Promise<string | undefined> {
  for (const candidate of [blobPath(digest), digest, label]) {
    const path = join(source.blobDir, candidate);
    if (await isFile(path)) return path;
  }
  return undefined;
}

async function readManifestFile(path: string, blobDir: string): Promise<PushSource> {
  const bytes = await Deno.readFile(path);
  const manifest = parseManifest(bytes);
  return { imageId: imageIdOf(bytes), manifestPath: path, bytes, manifest, blobDir };
}

/** Image ids of a directory in store layout; none when it has no `images/`. */
async function imagesUnder(root: string): Promise<string[]> {
  if (!await Deno.stat(join(root, "images")).then((info) => info.isDirectory, () => false)) {
    return [];
  }
  return await Array.fromAsync(openDirectoryStore(root).listImages());
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((info) => info.isFile, () => false);
}
