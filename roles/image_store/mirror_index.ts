/**
 * Keeps `<root>/all.txt`, the mirror index: one `./path` line for every published image and
 * every blob an image names, blobs before the image that needs them, so `wget -x -nH -B <url>/
 * -i all.txt` reproduces the store. Blobs uploaded for an image not yet published are left out:
 * they are not part of the store's content yet, and `tml image-store gc` may remove them.
 *
 * The file is rebuilt from the store at start (so it is right after any crash), then only
 * appended to, one image at a time. Readers are served the first `length` bytes, and `length`
 * moves only after an append is complete, so a reader never sees half a line. Because entries
 * are only ever added (gc removes unreferenced blobs only), nothing listed ever disappears.
 */
import { blobPath, imagePath } from "../../lib/store/layout.ts";
import { INDEX_PATH, indexLine } from "../../lib/protocol/image_store.ts";

export interface IndexedImage {
  id: string;
  blobDigests: string[];
}

export class MirrorIndex {
  readonly path: string;
  #listed = new Set<string>();
  #length = 0;
  #appending: Promise<void> = Promise.resolve();

  private constructor(root: string) {
    this.path = `${root}/${INDEX_PATH}`;
  }

  /** Writes a fresh index of `images` (atomically: temp file, fsync, rename). */
  static async rebuild(root: string, images: Iterable<IndexedImage>): Promise<MirrorIndex> {
    const index = new MirrorIndex(root);
    const paths = index.#unlisted(images);
    const bytes = new TextEncoder().encode(paths.map(indexLine).join(""));
    const temp = `${index.path}.${crypto.randomUUID()}.tmp`;
    try {
      using file = await Deno.open(temp, { write: true, createNew: true });
      await writeAll(file, bytes);
      await file.sync();
      await Deno.rename(temp, index.path);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
    index.#length = bytes.length;
    for (const path of paths) index.#listed.add(path);
    return index;
  }

  /** Bytes of the index readers may see. */
  get length(): number {
    return this.#length;
  }

  /** Number of paths listed. */
  get entries(): number {
    return this.#listed.size;
  }

  /** Appends an image and any of its blobs not yet listed; appends run one at a time. */
  add(image: IndexedImage): Promise<void> {
    const next = this.#appending.then(async () => {
      const paths = this.#unlisted([image]);
      if (paths.length === 0) return;
      const bytes = new TextEncoder().encode(paths.map(indexLine).join(""));
      using file = await Deno.open(this.path, { write: true });
      // Write at the published length: bytes left by an append that failed half-way are
      // overwritten rather than kept as a torn line.
      await file.seek(this.#length, Deno.SeekMode.Start);
      await writeAll(file, bytes);
      await file.truncate(this.#length + bytes.length);
      await file.sync();
      this.#length += bytes.length;
      for (const path of paths) this.#listed.add(path);
    });
    this.#appending = next.catch(() => {});
    return next;
  }

  /** Paths of `images` (blobs first) not listed yet, without duplicates. */
  #unlisted(images: Iterable<IndexedImage>): string[] {
    const paths = new Set<string>();
    for (const image of images) {
      for (const digest of image.blobDigests) paths.add(blobPath(digest));
      paths.add(imagePath(image.id));
    }
    return [...paths].filter((path) => !this.#listed.has(path));
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
}
