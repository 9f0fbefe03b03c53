/**
 * Streams one file to an image store as `PUT /blobs/<sha256>`. It uses `node:http` rather than
 * `fetch`: Deno's fetch sends a streaming body chunked, in 32 KiB pieces, and drops any
 * Content-Length; node:http sends the declared length (so the server can refuse a short body and
 * reject an oversized one before reading it) and moves ~1.5 GB/s on loopback against ~0.6 GB/s.
 * The file is read in 1 MiB blocks, and writes wait for `drain`, so memory stays constant.
 *
 * The server may answer before it has read the body (the blob is already stored, the token is
 * refused) and then stops reading: the socket's buffers fill and `drain` never comes. So every
 * wait for `drain` also ends when the answer arrives or the request fails, and sending stops.
 */
import http from "node:http";
import https from "node:https";

export interface RawResponse {
  status: number;
  body: string;
}

export interface BlobUploadOptions {
  url: URL;
  path: string;
  size: number;
  headers: Record<string, string>;
  /** Called with the number of bytes just sent. */
  onBytes?: (bytes: number) => void;
}

const BLOCK = 1 << 20;

/** Sends the file and resolves with the server's answer, whatever its status. */
export async function uploadFile(options: BlobUploadOptions): Promise<RawResponse> {
  const file = await Deno.open(options.path, { read: true });
  try {
    const transport = options.url.protocol === "https:" ? https : http;
    const request = transport.request(options.url, {
      method: "PUT",
      headers: {
        ...options.headers,
        "content-type": "application/octet-stream",
        "content-length": String(options.size),
      },
    });
    const answer = new Promise<RawResponse>((resolve, reject) => {
      request.on("error", reject);
      request.on("response", (response) => {
        const chunks: Uint8Array[] = [];
        response.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          resolve({
            status: response.statusCode ?? 0,
            body: new TextDecoder().decode(concat(chunks)),
          });
        });
      });
    });
    // Settles (never rejects) once the exchange is over, whichever way: sending stops then.
    const over = answer.then(() => {}, () => {});
    let finished = false;
    over.then(() => finished = true);
    const blocks = new BlockPool(over);
    let sent = 0;
    while (sent < options.size && !finished) {
      const block = await blocks.take();
      if (block === undefined) break;
      const n = await file.read(block.subarray(0, Math.min(BLOCK, options.size - sent)));
      if (n === null) {
        request.destroy();
        throw new Error(`Cannot upload "${options.path}": the file shrank while being sent`);
      }
      sent += n;
      // The request holds on to the bytes until they are written: the block is free again then.
      // Once: a request retried on a fresh connection may call a write's callback again.
      let given = false;
      const flushed = request.write(block.subarray(0, n), () => {
        if (!given) blocks.give(block);
        given = true;
      });
      options.onBytes?.(n);
      if (!flushed) await drainOrEnd(request, over);
    }
    if (finished) request.destroy();
    else request.end();
    return await answer;
  } finally {
    file.close();
  }
}

/**
 * The blocks the file is read into, reused once the request has written them: a fresh 1 MiB
 * per block cost the client a gigabyte of new memory per gigabyte sent (page faults, zeroing,
 * collections). A few are enough: the sender waits for `drain` after each block anyway.
 */
class BlockPool {
  static readonly SIZE = 4;
  #free: Uint8Array<ArrayBuffer>[] = [];
  #made = 0;
  #wake?: () => void;

  constructor(private readonly over: Promise<void>) {}

  /** A free block; undefined when the exchange ended while waiting for one. */
  async take(): Promise<Uint8Array<ArrayBuffer> | undefined> {
    while (this.#free.length === 0) {
      if (this.#made < BlockPool.SIZE) {
        this.#made++;
        return new Uint8Array(BLOCK);
      }
      const freed = new Promise<"freed">((resolve) => this.#wake = () => resolve("freed"));
      if (await Promise.race([freed, this.over.then(() => "over" as const)]) === "over") {
        return undefined;
      }
    }
    return this.#free.pop();
  }

  give(block: Uint8Array<ArrayBuffer>): void {
    this.#free.push(block);
    this.#wake?.();
    this.#wake = undefined;
  }
}

/** Waits until the request can take more bytes, or the exchange is over; leaves no listener. */
async function drainOrEnd(request: http.ClientRequest, over: Promise<void>): Promise<void> {
  let wake = () => {};
  const drained = new Promise<void>((resolve) => wake = resolve);
  request.once("drain", wake);
  request.once("close", wake);
  try {
    await Promise.race([drained, over]);
  } finally {
    request.off("drain", wake);
    request.off("close", wake);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
