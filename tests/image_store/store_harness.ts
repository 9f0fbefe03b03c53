/**
 * Helpers for the image store's end-to-end tests: a real `tml image-store serve` process on a
 * free port, random files of a given size with their digests, hashing of HTTP bodies, the
 * server's counters, and raw socket writes and polling for tests that act mid-transfer.
 */
import { createHash, randomFillSync } from "node:crypto";
import { StoreStats } from "../../lib/protocol/image_store.ts";
import { TmlProcess } from "../support/tml_process.ts";

export const UPLOAD_TOKEN = "test-upload-token-5f1d0c7a9b";

export interface RunningStore {
  url: string;
  root: string;
  /** The file holding UPLOAD_TOKEN, for `tml image push --token-file`. */
  tokenFile: string;
  process: TmlProcess;
  stop(signal?: Deno.Signal): Promise<void>;
}

/** Starts `tml image-store serve` on `root` with an upload token; `listen` defaults to port 0. */
export async function startImageStore(
  root: string,
  options: { listen?: string; args?: string[] } = {},
): Promise<RunningStore> {
  const tokenFile = `${root}.token`;
  await Deno.writeTextFile(tokenFile, `${UPLOAD_TOKEN}\n`, { mode: 0o600 });
  const process = TmlProcess.start([
    "image-store",
    "serve",
    "--listen",
    options.listen ?? "127.0.0.1:0",
    "--root",
    root,
    "--upload-token-file",
    tokenFile,
    ...(options.args ?? []),
  ]);
  const match = await process.waitFor(/listening on (http:\/\/\S+)/, 30_000);
  return {
    url: match[1],
    root,
    tokenFile,
    process,
    async stop(signal: Deno.Signal = "SIGTERM") {
      await process.kill(signal);
    },
  };
}

/** Writes `size` random bytes to `path`; returns their SHA-256. */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  using target = await Deno.open(path, { write: true, create: true, truncate: true });
  // OpenSSL's generator: ~1.7 GB/s, four times /dev/urandom, which matters for 4 GiB benches.
  const block = new Uint8Array(1 << 20);
  let left = size;
  while (left > 0) {
    const want = randomFillSync(block.subarray(0, Math.min(block.length, left)));
    hash.update(want);
    let written = 0;
    while (written < want.length) written += await target.write(want.subarray(written));
    left -= want.length;
  }
  return hash.digest("hex");
}

/** SHA-256 and length of a response body, read as it streams. */
export async function hashBody(response: Response): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of response.body ?? []) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest("hex"), size };
}

export async function storeStats(url: string): Promise<StoreStats> {
  return StoreStats.parse(await (await fetch(`${url}/api/v1/stats`)).json());
}

/** Every file under `dir` (relative paths), for comparing trees. */
export async function listFiles(dir: string, relative = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${relative}`)) {
    const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory) out.push(...await listFiles(dir, path));
    else if (entry.isFile) out.push(path);
  }
  return out.sort();
}

export function authHeader(token = UPLOAD_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Writes all of `bytes` to a socket (a single write may take only part). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Polls `condition` until it holds; fails after `timeoutMs`. */
export async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The peak resident memory of process `pid` (VmHWM), in bytes. */
export async function peakRssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Starts a new peak for peakRssBytes (Linux: "5" to clear_refs resets VmHWM to VmRSS). */
export async function resetPeakRss(pid: number): Promise<void> {
  await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
}
