/**
 * Downloads: `GET`/`HEAD` of blobs, manifests and `all.txt`. Store entries are immutable, so
 * they carry their digest as a strong ETag and a year-long immutable Cache-Control; single byte
 * ranges are honoured (206, or 416 past the end) so fetchers resume cut-off transfers. Bodies
 * stream from the backend in 1 MiB blocks, so memory stays flat whatever the blob size.
 */
import { type Context, Hono } from "hono";
import { StoreError } from "../../lib/store/errors.ts";
import { contentRangeHeader, parseRangeHeader } from "../../lib/store/http_range.ts";
import { blobPath, imagePath } from "../../lib/store/layout.ts";
import type { ByteRange } from "../../lib/store/storage.ts";
import { INDEX_PATH } from "../../lib/protocol/image_store.ts";
import type { StoreServerDeps } from "./context.ts";
import { errorResponse } from "./http_errors.ts";
import { type StoreEntry, storeEntryOf } from "./request_path.ts";

const IMMUTABLE = "public, max-age=31536000, immutable";

export function fileRoutes(deps: StoreServerDeps): Hono {
  const app = new Hono();
  app.get(`/${INDEX_PATH}`, (c) => serveIndex(c, deps));
  app.get("/blobs/*", (c) => serveEntry(c, deps, storeEntryOf(rawPath(c))));
  app.get("/images/*", (c) => serveEntry(c, deps, storeEntryOf(rawPath(c))));
  return app;
}

/** The path exactly as sent (still percent-encoded), which request_path.ts insists on. */
export function rawPath(c: Context): string {
  const url = c.req.url;
  const start = url.indexOf("/", url.indexOf("://") + 3);
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? undefined : query);
}

async function serveEntry(c: Context, deps: StoreServerDeps, entry: StoreEntry) {
  const path = entry.kind === "blob" ? blobPath(entry.digest) : imagePath(entry.digest);
  const info = await deps.store.backend.stat(path);
  if (info === undefined) {
    throw new StoreError("not_found", `Cannot find ${entry.kind} "${entry.digest}" in this store`);
  }
  const etag = `"${entry.digest}"`;
  const headers = new Headers({
    "content-type": entry.kind === "blob" ? "application/octet-stream" : "application/toml",
    etag,
    "accept-ranges": "bytes",
    "cache-control": IMMUTABLE,
    "last-modified": info.mtime.toUTCString(),
  });
  if (matchesEtag(c.req.header("if-none-match"), etag)) {
    return new Response(null, { status: 304, headers });
  }
  const range = decideRange(c, etag, info.size, headers);
  if (range instanceof Response) return range;
  const length = range === undefined ? info.size : range.end - range.start + 1;
  headers.set("content-length", String(length));
  if (range !== undefined) headers.set("content-range", contentRangeHeader(range, info.size));
  const status = range === undefined ? 200 : 206;
  if (c.req.method === "HEAD") return new Response(null, { status, headers });

  const stream = await deps.store.backend.openRead(path, range);
  const { stats } = deps;
  if (entry.kind === "image") stats.imageDownloads++;
  else stats.blobDownloads++;
  const body = entry.kind === "blob"
    ? countedStream(stream, (bytes) => stats.blobBytesSent += bytes)
    : stream;
  return new Response(body, { status, headers });
}

/**
 * `stream` with `onBytes` told of each piece read from it. A byte stream stays one, and a BYOB
 * read is passed through with the reader's own buffer, so the server's reads still fill its
 * buffers with no copy (http1_server.ts).
 */
function countedStream(
  stream: ReadableStream<Uint8Array>,
  onBytes: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader({ mode: "byob" });
  return new ReadableStream({
    type: "bytes",
    // A default reader is handed 1 MiB blocks of fresh memory, as the backend's own stream does.
    autoAllocateChunkSize: 1 << 20,
    async pull(controller) {
      const request = controller.byobRequest!;
      try {
        // The read takes the view's buffer over; its result is a view of that same buffer.
        const { value, done } = await reader.read(request.view as Uint8Array<ArrayBuffer>);
        if (done) {
          controller.close();
          if (value !== undefined) request.respondWithNewView(value);
          return;
        }
        onBytes(value.length);
        request.respondWithNewView(value);
      } catch (error) {
        controller.error(error);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** The range to send, undefined for all of it, or a ready 416 answer. */
function decideRange(
  c: Context,
  etag: string,
  size: number,
  headers: Headers,
): ByteRange | undefined | Response {
  // If-Range with another validator means "my partial copy is stale: send everything".
  const ifRange = c.req.header("if-range");
  if (ifRange !== undefined && ifRange !== etag) return undefined;
  try {
    return parseRangeHeader(c.req.header("range") ?? null, size);
  } catch (error) {
    if (!(error instanceof StoreError) || error.code !== "invalid_range") throw error;
    headers.set("content-range", `bytes */${size}`);
    headers.set("content-type", "application/json");
    return new Response(JSON.stringify({ error: error.toJSON() }), { status: 416, headers });
  }
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((tag) => {
    const trimmed = tag.trim().replace(/^W\//, "");
    return trimmed === etag || trimmed === "*";
  });
}

/**
 * `all.txt` as it stands: the first `length` bytes of the index file, which are complete lines
 * even while an image is being appended. It changes, so it is revalidated on every use.
 */
async function serveIndex(c: Context, deps: StoreServerDeps) {
  const length = deps.index.length;
  const headers = new Headers({
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(length),
    "cache-control": "no-cache",
  });
  if (c.req.method === "HEAD") return new Response(null, { headers });
  try {
    const file = await Deno.open(deps.index.path, { read: true });
    return new Response(boundedStream(file, length), { headers });
  } catch (error) {
    return errorResponse(error, c, deps.log);
  }
}

function boundedStream(file: Deno.FsFile, length: number): ReadableStream<Uint8Array> {
  let remaining = length;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (remaining === 0) {
        file.close();
        controller.close();
        return;
      }
      const buffer = new Uint8Array(Math.min(1 << 20, remaining));
      const n = await file.read(buffer);
      if (n === null) {
        file.close();
        controller.error(new Error(`${INDEX_PATH} is shorter than its published length`));
        return;
      }
      remaining -= n;
      controller.enqueue(buffer.subarray(0, n));
    },
    cancel() {
      file.close();
    },
  });
}
