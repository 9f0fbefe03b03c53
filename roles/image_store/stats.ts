/**
 * Counters of what the server moved since it started, served at `/api/v1/stats`. Bytes are
 * counted as they leave or arrive, so an aborted download counts what was really sent.
 */
import type { StoreStats } from "../../lib/protocol/image_store.ts";

export class ServerStats {
  readonly #started = new Date().toISOString();
  blobDownloads = 0;
  blobBytesSent = 0;
  imageDownloads = 0;
  blobUploads = 0;
  blobBytesReceived = 0;
  imageUploads = 0;

  snapshot(images: number): StoreStats {
    return {
      started: this.#started,
      blob_downloads: this.blobDownloads,
      blob_bytes_sent: this.blobBytesSent,
      image_downloads: this.imageDownloads,
      blob_uploads: this.blobUploads,
      blob_bytes_received: this.blobBytesReceived,
      image_uploads: this.imageUploads,
      images,
    };
  }
}
