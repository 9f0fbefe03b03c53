/**
 * `tml image push`: publishes an image to a store, sending only what the store lacks. Every
 * distinct blob is checked with HEAD; the missing ones are streamed (the store verifies each
 * against its digest), then the manifest is published. If the store answers 409 because a blob
 * vanished meanwhile (garbage collection of an old unreferenced copy), the missing blobs are
 * sent again once. Prints `{"image_id": ...}` and what was sent.
 */
import { printJson } from "../../../lib/cli/output.ts";
import { loadImageClientConfig, requireStoreUrl, uploadToken } from "./config.ts";
import { ImageCommandError } from "./errors.ts";
import { transferProgress } from "./progress.ts";
import { findBlobFile, type PushSource, readPushSource } from "./push_source.ts";
import { ImageStoreClient } from "./store_client.ts";

export interface PushOptions {
  store?: string;
  tokenFile?: string;
  config?: string;
}

interface PendingBlob {
  label: string;
  sha256: string;
  size: number;
  path: string;
}

export async function pushCommand(sourcePath: string, options: PushOptions): Promise<void> {
  const config = await loadImageClientConfig(options);
  const source = await readPushSource(sourcePath);
  const client = new ImageStoreClient({
    url: requireStoreUrl(config),
    token: await uploadToken(config),
  });
  if (!client.hasToken) {
    throw new ImageCommandError(
      "missing_token",
      `Cannot push to "${client.url}": no token (set TML_API_TOKEN, give --token-file, or run "tml login")`,
      { status: 401, field: "api_token" },
    );
  }
  let sent = await sendMissingBlobs(client, source);
  let published;
  try {
    published = await client.uploadManifest(source.imageId, source.bytes);
  } catch (error) {
    if (!(error instanceof ImageCommandError) || error.code !== "missing_blobs") throw error;
    const again = await sendMissingBlobs(client, source);
    sent = { blobs: sent.blobs + again.blobs, bytes: sent.bytes + again.bytes };
    published = await client.uploadManifest(source.imageId, source.bytes);
  }
  printJson({
    image_id: source.imageId,
    created: published.created,
    uploaded_blobs: sent.blobs,
    uploaded_bytes: sent.bytes,
    total_blobs: new Set(Object.values(source.manifest.blobs).map((blob) => blob.sha256)).size,
  });
}

/** Uploads every blob of the image that the store does not have. */
async function sendMissingBlobs(
  client: ImageStoreClient,
  source: PushSource,
): Promise<{ blobs: number; bytes: number }> {
  const pending: PendingBlob[] = [];
  const seen = new Set<string>();
  for (const [label, blob] of Object.entries(source.manifest.blobs)) {
    if (seen.has(blob.sha256)) continue;
    seen.add(blob.sha256);
    if (await client.hasBlob(blob.sha256)) continue;
    const path = await findBlobFile(source, label, blob.sha256);
    if (path === undefined) {
      throw new ImageCommandError(
        "missing_blob_file",
        `Cannot push image "${source.imageId}": blob "${label}" (${blob.sha256}) is not in the ` +
          `store and not beside the manifest in "${source.blobDir}" (looked for ` +
          `blobs/…/${blob.sha256}, ${blob.sha256} and ${label})`,
        { field: `blobs.${label}` },
      );
    }
    const { size } = await Deno.stat(path);
    if (size !== blob.size) {
      throw new ImageCommandError(
        "size_mismatch",
        `Cannot push blob "${label}": "${path}" has ${size} bytes, the manifest says ${blob.size}`,
        { field: `blobs.${label}.size` },
      );
    }
    pending.push({ label, sha256: blob.sha256, size, path });
  }
  const total = pending.reduce((sum, blob) => sum + blob.size, 0);
  const progress = transferProgress("push", total);
  try {
    for (const blob of pending) {
      await client.uploadBlob(blob.sha256, blob.path, blob.size, (bytes) => progress.add(bytes));
    }
  } finally {
    progress.stop();
  }
  return { blobs: pending.length, bytes: total };
}
