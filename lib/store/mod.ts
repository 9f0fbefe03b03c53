/**
 * The image store's public surface: layout, manifests, storage backends, the blob store and
 * the image fetcher.
 */
export { StoreError, type StoreErrorCode } from "./errors.ts";
export { assertDigest, blobPath, imagePath, parseStorePath, Sha256Digest } from "./layout.ts";
export {
  BASE_EXTENSION,
  BLOB_LABEL,
  type BlobRef,
  BLOBS_MAX,
  DESCRIPTION_MAX_BYTES,
  imageIdOf,
  imageKindOf,
  ImageManifest,
  KERNEL_BOOT,
  kernelBootOf,
  LABEL_MAX_BYTES,
  MANIFEST_KEYS,
  MANIFEST_MAX_BYTES,
  ManifestBlob,
  manifestTotalSize,
  NBD_QCOW2_LAYERED,
  nbdLayers,
  parseManifest,
  type QcowLayer,
  QEMU_LAYERED,
  qemuLayerChain,
  writeManifest,
} from "./manifest.ts";
export { hashFileInto, sha256Bytes, sha256File, Sha256Hasher } from "./sha256.ts";
export type {
  ByteRange,
  ByteSource,
  ExpectedContent,
  StoreBackend,
  StoredEntry,
} from "./storage.ts";
export { DirectoryBackend, STALE_TMP_MS } from "./directory_backend.ts";
export { BlobStore, openDirectoryStore } from "./blob_store.ts";
export { contentRangeHeader, parseContentRange, parseRangeHeader } from "./http_range.ts";
export {
  type FetchProgress,
  ImageFetcher,
  type ImageFetcherOptions,
  type RetryPolicy,
} from "./fetcher.ts";
