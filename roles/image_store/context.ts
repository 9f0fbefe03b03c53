/** What every route of the image store server works with, built once by `serve.ts`. */
import type { Logger } from "../../lib/log.ts";
import type { BlobStore } from "../../lib/store/blob_store.ts";
import type { ImageCatalog } from "./catalog.ts";
import type { ImageStoreConfig } from "./config.ts";
import type { GcLock } from "./gc_lock.ts";
import type { MirrorIndex } from "./mirror_index.ts";
import type { ServerStats } from "./stats.ts";
import type { UploadAuth } from "./upload_auth.ts";

export interface StoreServerDeps {
  config: ImageStoreConfig;
  store: BlobStore;
  catalog: ImageCatalog;
  index: MirrorIndex;
  auth: UploadAuth;
  stats: ServerStats;
  /** Shared while an image is published, so gc never removes a blob it was checked to have. */
  gcLock: GcLock;
  log: Logger;
}
