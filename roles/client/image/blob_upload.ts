/**
 * Streams one file to an image store as `PUT /blobs/<sha256>`. It uses `node:http` rather than
 * `fetch`: Deno's fetch sends a streaming body chunked, in 32 KiB pieces, and drops any
 * Content-Length; node:http sends the declared length (so the server can refuse a short body and
 * reject an oversized one before reading it) and moves ~1.5 GB/s on loopback against ~0.6 GB/s.
 * The file is read in 1 MiB blocks, and writes wait for `drain`, so memory stays constant.
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
    // The server may answer early (blob already present, bad token): stop sending then.
    let answered = false;
    answer.then(() => answered = true, () => answered = true);
    let sent = 0;
    while (sent < options.size && !answered) {
      const block = new Uint8Array(Math.min(BLOCK, options.size - sent));
      const n = await file.read(block);
      if (n === null) {
        request.destroy();
        throw new Error(`Cannot upload "${options.path}": the file shrank while being sent`);
      }
      sent += n;
      if (!request.write(block.subarray(0, n))) {
        await new Promise<void>((resolve) => {
          request.once("drain", resolve);
          request.once("close", resolve);
        });
      }
      options.onBytes?.(n);
    }
    if (answered) request.destroy();
    else request.end();
    return await answer;
  } finally {
    file.close();
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
