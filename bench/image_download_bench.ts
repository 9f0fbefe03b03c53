/**
 * Blob download throughput of `tml image-store serve` against nginx (Debian's package, one
 * worker, sendfile on) serving the same store directory on loopback, in one run: the same
 * 1 GiB blob fetched with curl to /dev/null from each in turn, the median of several runs
 * compared as a ratio (target >= 0.9x nginx). curl is the client for both because it is faster
 * than either server, so the figure is the servers' and not the client's. Both read the blob
 * from the page cache, warmed before timing.
 */
import { join } from "node:path";
import { requireProgram, type SystemProgram } from "../lib/system_packages.ts";
import { blobPath } from "../lib/store/layout.ts";
import { openDirectoryStore } from "../lib/store/blob_store.ts";
import { freePort } from "../tests/support/tml_process.ts";
import {
  startImageStore,
  storeStats,
  writeRandomFile,
} from "../tests/image_store/store_harness.ts";

const SIZE = 1024 ** 3;
const RUNS = 5;
const NGINX: SystemProgram = {
  command: "nginx",
  debianPackage: "nginx",
  searchDirs: ["/usr/sbin"],
};
const CURL: SystemProgram = { command: "curl", debianPackage: "curl" };

const nginxPath = await requireProgram(NGINX);
const curlPath = await requireProgram(CURL);
const dir = await Deno.makeTempDir({ prefix: "tml-bench-download-" });
// nginx's worker drops root for "nobody", which must be able to reach the store.
await Deno.chmod(dir, 0o755);
const root = join(dir, "store");

const source = join(dir, "blob.bin");
const digest = await writeRandomFile(source, SIZE);
{
  using file = await Deno.open(source, { read: true });
  await openDirectoryStore(root).put(digest, file.readable, SIZE);
  await Deno.remove(source);
}

const store = await startImageStore(root);
const nginx = await startNginx(root);
try {
  const urls = {
    tml: `${store.url}/${blobPath(digest)}`,
    nginx: `${nginx.url}/${blobPath(digest)}`,
  };
  const speeds: Record<keyof typeof urls, number[]> = { tml: [], nginx: [] };
  for (let run = -1; run < RUNS; run++) {
    for (const server of ["tml", "nginx"] as const) {
      const speed = await curlSpeed(urls[server]);
      if (run >= 0) speeds[server].push(speed); // Run -1 warms the page cache and both servers.
    }
  }
  const sentBefore = (await storeStats(store.url)).blob_bytes_sent;
  if (sentBefore !== (RUNS + 1) * SIZE) {
    throw new Error(`the store counted ${sentBefore} bytes sent, expected ${(RUNS + 1) * SIZE}`);
  }
  const tml = median(speeds.tml);
  const reference = median(speeds.nginx);
  const version = await nginxVersion();
  console.log(`1 GiB blob download on loopback, curl to /dev/null, median of ${RUNS} runs each:`);
  console.log(`  tml image-store serve: ${mb(tml)} MB/s (runs: ${speeds.tml.map(mb).join(", ")})`);
  console.log(`  ${version}: ${mb(reference)} MB/s (runs: ${speeds.nginx.map(mb).join(", ")})`);
  const ratio = tml / reference;
  figure("  download throughput vs nginx", ratio, "x", ">= 0.9x", ratio >= 0.9);
} finally {
  await store.stop();
  await nginx.stop();
  await Deno.remove(dir, { recursive: true });
}

/** Bytes per second of one download of `url` by curl, checking it got every byte. */
async function curlSpeed(url: string): Promise<number> {
  const output = await new Deno.Command(curlPath, {
    args: [
      "--silent",
      "--show-error",
      "--output",
      "/dev/null",
      "--write-out",
      "%{http_code} %{size_download} %{time_total}",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const [status, size, seconds] = new TextDecoder().decode(output.stdout).trim().split(" ");
  if (!output.success || status !== "200" || Number(size) !== SIZE) {
    throw new Error(
      `curl ${url}: status ${status}, ${size} bytes: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return SIZE / Number(seconds);
}

/** nginx in the foreground with a config of its own, serving `root` on a loopback port. */
async function startNginx(root: string): Promise<{ url: string; stop(): Promise<void> }> {
  const prefix = join(dir, "nginx");
  await Deno.mkdir(join(prefix, "logs"), { recursive: true });
  const port = freePort();
  const config = join(prefix, "nginx.conf");
  await Deno.writeTextFile(
    config,
    `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  const child = new Deno.Command(nginxPath, {
    args: ["-p", prefix, "-c", config, "-e", join(prefix, "logs", "error.log")],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (true) {
    const up = await fetch(url).then(async (response) => {
      await response.body?.cancel();
      return true;
    }, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`nginx did not answer on ${url}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    async stop() {
      child.kill("SIGQUIT");
      await child.status;
    },
  };
}

async function nginxVersion(): Promise<string> {
  const output = await new Deno.Command(nginxPath, { args: ["-v"], stderr: "piped" }).output();
  return new TextDecoder().decode(output.stderr).trim().replace(/^nginx version: /, "");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function mb(bytesPerSecond: number): string {
  return (bytesPerSecond / 1e6).toFixed(0);
}

function figure(name: string, value: number, unit: string, target: string, pass: boolean): void {
  console.log(`${name}: ${value.toFixed(2)} ${unit} (target ${target}) ${pass ? "PASS" : "MISS"}`);
}
