/**
 * Peak memory of `tml image-store serve` while it moves a 4 GiB blob each way: the blob is
 * uploaded (verified and stored) with the client `tml image push` uses, then downloaded whole
 * with curl. The figure is the server process's peak resident set (VmHWM in /proc), reset
 * between the two directions, against a target of 150 MB each. A server that buffered a blob
 * instead of streaming it would need gigabytes.
 */
import { join } from "node:path";
import { requireProgram, type SystemProgram } from "../lib/system_packages.ts";
import { blobPath } from "../lib/store/layout.ts";
import { uploadFile } from "../roles/client/image/blob_upload.ts";
import {
  authHeader,
  peakRssBytes,
  resetPeakRss,
  startImageStore,
  writeRandomFile,
} from "../tests/image_store/store_harness.ts";

const SIZE = 4 * 1024 ** 3;
const TARGET_BYTES = 150e6;
const CURL: SystemProgram = { command: "curl", debianPackage: "curl" };

const curl = await requireProgram(CURL);
const dir = await Deno.makeTempDir({ prefix: "tml-bench-memory-" });
try {
  const source = join(dir, "blob.bin");
  const digest = await writeRandomFile(source, SIZE);
  const store = await startImageStore(join(dir, "store"));
  try {
    const pid = store.process.pid;
    const idle = await peakRssBytes(pid);

    const uploadStarted = performance.now();
    const answer = await uploadFile({
      url: new URL(`${store.url}/blobs/${digest}`),
      path: source,
      size: SIZE,
      headers: authHeader(),
    });
    if (answer.status !== 201) throw new Error(`upload failed: ${answer.status} ${answer.body}`);
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    const afterUpload = await peakRssBytes(pid);

    await resetPeakRss(pid);
    const downloadStarted = performance.now();
    const output = await new Deno.Command(curl, {
      args: [
        "--silent",
        "--show-error",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code} %{size_download}",
        `${store.url}/${blobPath(digest)}`,
      ],
      stdout: "piped",
    }).output();
    const [status, size] = new TextDecoder().decode(output.stdout).split(" ");
    if (status !== "200" || Number(size) !== SIZE) {
      throw new Error(`download failed: status ${status}, ${size} bytes`);
    }
    const downloadSeconds = (performance.now() - downloadStarted) / 1000;
    const afterDownload = await peakRssBytes(pid);

    console.log(`peak RSS of tml image-store serve moving a 4 GiB blob (idle: ${mbOf(idle)} MB):`);
    figure(`  upload (${rate(uploadSeconds)} MB/s)`, afterUpload);
    figure(`  download (${rate(downloadSeconds)} MB/s)`, afterDownload);
  } finally {
    await store.stop();
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

function mbOf(bytes: number): string {
  return (bytes / 1e6).toFixed(0);
}

function rate(seconds: number): string {
  return (SIZE / seconds / 1e6).toFixed(0);
}

function figure(name: string, bytes: number): void {
  const pass = bytes < TARGET_BYTES;
  console.log(`${name}: ${mbOf(bytes)} MB (target < 150 MB) ${pass ? "PASS" : "MISS"}`);
}
