/**
 * The QEMU driver's first step for a job (`fetching_image`): brings the job's image into the
 * site cache from the image store, reporting progress at most once a second, and returns its
 * manifest. A supervisor without an image store boots only what its site cache already holds.
 * A stopped job stops waiting at once; the download itself goes on (another job of the same
 * image may reuse it).
 */
import type { Logger } from "../../lib/log.ts";
import type { BlobStore, FetchProgress, ImageFetcher, ImageManifest } from "../../lib/store/mod.ts";
import { HostStartError } from "./host_driver.ts";

/** Fetch progress goes to the switchboard at most this often. */
const FETCH_PROGRESS_INTERVAL_MS = 1_000;

export interface JobImageFetch {
  jobId: string;
  imageId: string;
  /** The site cache. */
  store: BlobStore;
  fetcher?: ImageFetcher;
  /** A `fetching_image` progress message for people. */
  progress(message: string): void;
  log: Logger;
}

/** The job's image manifest, once every blob of it is in the site cache. */
export async function fetchJobImage(
  fetch: JobImageFetch,
  signal: AbortSignal,
): Promise<ImageManifest> {
  const { imageId, store, fetcher } = fetch;
  if (fetcher === undefined) {
    const manifest = await store.readManifest(imageId).catch((error) => {
      throw new HostStartError(
        `Cannot start a VM: image "${imageId}" is invalid: ${error.message}`,
        error,
      );
    });
    if (manifest === undefined) {
      throw new HostStartError(
        `Cannot start a VM: image "${imageId}" is not in the site cache (and this supervisor ` +
          "has no image store to fetch it from)",
      );
    }
    return manifest;
  }
  fetch.progress(`fetching image ${imageId}`);
  let lastReport = 0;
  const onProgress = (progress: FetchProgress) => {
    const now = Date.now();
    if (now - lastReport < FETCH_PROGRESS_INTERVAL_MS || signal.aborted) return;
    lastReport = now;
    fetch.progress(describeFetch(progress));
  };
  const started = performance.now();
  try {
    const manifest = await abortable(fetcher.fetchImage(imageId, onProgress), signal);
    fetch.log.info("image in the site cache", {
      job_id: fetch.jobId,
      image_id: imageId,
      fetch_ms: Math.round(performance.now() - started),
    });
    return manifest;
  } catch (error) {
    if (signal.aborted) throw new HostStartError("Cannot start a VM: the job was stopped");
    throw new HostStartError(
      `Cannot fetch image "${imageId}" into the site cache: ${(error as Error).message}`,
      error,
    );
  }
}

function describeFetch(progress: FetchProgress): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  return `fetching image: ${mb(progress.bytesDone)} of ${mb(progress.bytesTotal)} MB, ` +
    `${progress.blobsDone} of ${progress.blobsTotal} blobs`;
}

/** Rejects as soon as `signal` aborts; the work itself goes on (a shared download may be reused). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("aborted"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
