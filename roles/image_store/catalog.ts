/**
 * The server's in-memory list of published images, behind `GET /api/v1/images`: one summary per
 * image (label, revision, size, blob count, when this store received it), loaded from the
 * manifests at start and extended as images are published. Details (`/api/v1/images/<id>`) are
 * read from the manifest itself, so memory holds summaries only.
 */
import { type ImageManifest, manifestTotalSize } from "../../lib/store/manifest.ts";
import type { ImageDetail, ImageSummary } from "../../lib/protocol/image_store.ts";

export class ImageCatalog {
  readonly #images = new Map<string, ImageSummary>();

  get size(): number {
    return this.#images.size;
  }

  add(id: string, manifest: ImageManifest, created: Date): ImageSummary {
    const summary: ImageSummary = {
      id,
      label: manifest.label,
      revision: manifest.revision,
      description: manifest.description,
      size: manifestTotalSize(manifest),
      blob_count: Object.keys(manifest.blobs).length,
      created: created.toISOString(),
    };
    this.#images.set(id, summary);
    return summary;
  }

  get(id: string): ImageSummary | undefined {
    return this.#images.get(id);
  }

  /** Newest first; `label` keeps only images with that label. */
  list(label?: string): ImageSummary[] {
    const all = [...this.#images.values()];
    const chosen = label === undefined ? all : all.filter((image) => image.label === label);
    return chosen.sort((a, b) =>
      b.created.localeCompare(a.created) || b.revision - a.revision || a.id.localeCompare(b.id)
    );
  }
}

/** An image's full description for the API. */
export function imageDetail(summary: ImageSummary, manifest: ImageManifest): ImageDetail {
  return {
    ...summary,
    attrs: manifest.attrs,
    blobs: Object.entries(manifest.blobs).map(([label, blob]) => ({
      label,
      sha256: blob.sha256,
      size: blob.size,
      attrs: blob.attrs,
    })),
  };
}
