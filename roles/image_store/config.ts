/** The image store server's configuration: one zod schema, loaded in layers by `lib/config.ts`. */
import { z } from "zod";
import { configNumber } from "../../lib/config.ts";

export const ImageStoreConfig = z.object({
  /** Address to listen on, HOST:PORT; port 0 picks a free one. */
  listen: z.string().regex(/^[^\s]*:\d{1,5}$/, "expected HOST:PORT").default("127.0.0.1:7200"),
  /** Store root: `blobs/`, `images/` and `all.txt` live here. */
  root: z.string().min(1).default(".tml-data/image-store"),
  /** File holding the upload token of a standalone store (first line, trimmed). */
  upload_token_file: z.string().min(1).optional(),
  /** Switchboard whose API tokens (with `admin` or `push_image`) may upload. */
  switchboard: z.url().optional(),
  /** How long a switchboard's "this token may push" answer is trusted, in seconds. */
  auth_cache_seconds: configNumber().pipe(z.number().nonnegative()).default(30),
  /** Largest blob accepted, in bytes (default 256 GiB). */
  max_blob_bytes: configNumber().pipe(z.number().int().positive()).default(256 * 2 ** 30),
});
export type ImageStoreConfig = z.infer<typeof ImageStoreConfig>;
