/** `tml image list` and `tml image show <id>`: a store's images, as tables or JSON. */
import { assertDigest } from "../../../lib/store/layout.ts";
import { loadImageClientConfig, requireStoreUrl } from "./config.ts";
import { printJson, printResult, wantsJson } from "../../../lib/cli/output.ts";
import { formatBytes } from "./progress.ts";
import { ImageStoreClient } from "./store_client.ts";

export interface ListOptions {
  store?: string;
  label?: string;
  json?: boolean;
  config?: string;
}

export async function listCommand(options: ListOptions): Promise<void> {
  const config = await loadImageClientConfig(options);
  const client = new ImageStoreClient({ url: requireStoreUrl(config) });
  const images = await client.listImages(options.label);
  printResult(options, { images }, {
    head: ["id", "label", "revision", "size", "blobs", "created"],
    rows: images.map((image) => [
      image.id,
      image.label,
      image.revision,
      formatBytes(image.size),
      image.blob_count,
      image.created.replace("T", " ").slice(0, 19),
    ]),
  });
}

export interface ShowOptions {
  store?: string;
  json?: boolean;
  config?: string;
}

export async function showCommand(imageId: string, options: ShowOptions): Promise<void> {
  assertDigest(imageId, "image_id");
  const config = await loadImageClientConfig(options);
  const client = new ImageStoreClient({ url: requireStoreUrl(config) });
  const image = await client.showImage(imageId);
  if (wantsJson(options)) {
    printJson(image);
    return;
  }
  printResult(options, image, {
    head: ["field", "value"],
    rows: [
      ["id", image.id],
      ["label", image.label],
      ["revision", image.revision],
      ["size", `${formatBytes(image.size)} (${image.size} bytes)`],
      ["created", image.created],
      ["description", image.description],
      ...Object.entries(image.attrs).map(([key, value]) => [`attr ${key}`, value]),
    ],
  });
  printResult(options, image, {
    head: ["blob", "sha256", "size", "attrs"],
    rows: image.blobs.map((blob) => [
      blob.label,
      blob.sha256,
      formatBytes(blob.size),
      Object.entries(blob.attrs).map(([key, value]) => `${key}=${value}`).join("\n"),
    ]),
  });
}
