/**
 * Keeps garbage collection from removing a blob that an image is being published with.
 *
 * Publishing checks that every blob a manifest names is stored, then writes the manifest; gc
 * lists the images, then removes the blobs none of them names. Interleaved, gc could list the
 * images just before the manifest is written and remove a blob just after the check passed:
 * the image would be published without it. The grace period does not cover this, because a
 * push skips a blob the store already has, however old (and unreferenced) it is. So both hold
 * a lock on `<root>/gc.lock` (flock, across processes): each publish shares it, gc holds it
 * alone while it lists the images again and removes. gc first: the publish finds the blob
 * missing and answers 409, and `tml image push` sends it again. Publish first: gc sees the
 * image and keeps the blob.
 */
import { join } from "node:path";

export class GcLock {
  readonly path: string;

  constructor(root: string) {
    this.path = join(root, "gc.lock");
  }

  /** Runs `work` while no gc removes anything; publishes run side by side. */
  shared<T>(work: () => Promise<T>): Promise<T> {
    return this.#holding(false, work);
  }

  /** Runs `work` while no publish is between its check and its write, and no other gc runs. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#holding(true, work);
  }

  async #holding<T>(exclusive: boolean, work: () => Promise<T>): Promise<T> {
    // The file is never removed, so every holder locks the same inode.
    const file = await Deno.open(this.path, { read: true, write: true, create: true });
    try {
      await file.lock(exclusive);
      return await work();
    } finally {
      // Closing releases the lock.
      file.close();
    }
  }
}
