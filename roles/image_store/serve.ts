/**
 * `tml image-store serve`: opens the store root, reads the published images into the catalog,
 * rebuilds `all.txt`, and serves the store over HTTP, printing the URL it listens on. SIGINT and
 * SIGTERM stop it cleanly; a `kill -9` loses nothing, since every upload is published by one
 * atomic link after verification, and the index is rebuilt at the next start.
 */
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { openDirectoryStore } from "../../lib/store/blob_store.ts";
import { buildApp } from "./app.ts";
import { ImageStoreConfig } from "./config.ts";
import { GcLock } from "./gc_lock.ts";
import { serveHttp1 } from "./http1_server.ts";
import { StoreHttpError } from "./http_errors.ts";
import { loadImages } from "./load_images.ts";
import { MirrorIndex } from "./mirror_index.ts";
import { ServerStats } from "./stats.ts";
import { UploadAuth } from "./upload_auth.ts";

export interface ServeOptions {
  config?: string;
  flags: Record<string, unknown>;
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfig(ImageStoreConfig, { file: options.config, flags: options.flags });
  const log = createLogger("image-store");
  await Deno.mkdir(config.root, { recursive: true });
  const store = openDirectoryStore(config.root);
  const { catalog, images } = await loadImages(store, log);
  const index = await MirrorIndex.rebuild(config.root, images);
  const auth = new UploadAuth({
    uploadToken: config.upload_token_file === undefined
      ? undefined
      : await readToken(config.upload_token_file),
    switchboardUrl: config.switchboard,
    cacheMs: config.auth_cache_seconds * 1000,
  });
  if (!auth.enabled) {
    log.warn("uploads disabled: configure upload_token_file or switchboard to accept them");
  }
  const app = buildApp({
    config,
    store,
    catalog,
    index,
    auth,
    stats: new ServerStats(),
    gcLock: new GcLock(config.root),
    log,
  });

  const separator = config.listen.lastIndexOf(":");
  const hostname = config.listen.slice(0, separator).replace(/^\[(.*)\]$/, "$1") || "0.0.0.0";
  const port = Number(config.listen.slice(separator + 1));
  const server = serveHttp1({ hostname, port, refuseTarget }, app.fetch, (error) => {
    log.error("request failed", { error: error instanceof Error ? error.message : String(error) });
  });
  const host = server.addr.hostname.includes(":")
    ? `[${server.addr.hostname}]`
    : server.addr.hostname;
  console.log(`listening on http://${host}:${server.addr.port}`);
  log.info("image store started", {
    url: `http://${host}:${server.addr.port}`,
    root: config.root,
    images: catalog.size,
    indexed_paths: index.entries,
    uploads: auth.enabled ? "enabled" : "disabled",
  });

  const shutdown = async () => {
    log.info("image store shutting down");
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  await server.finished;
}

/** The answer to a path with dot segments, which the router would only see resolved. */
function refuseTarget(target: string): Response {
  const error = new StoreHttpError(
    400,
    "invalid_path",
    `Invalid path "${target.slice(0, 200)}": "." and ".." segments are not allowed`,
    { field: "path" },
  );
  return Response.json({ error: error.toJSON() }, { status: 400 });
}

async function readToken(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new StoreHttpError(
      400,
      "invalid_config",
      `Cannot read upload token file "${path}": ${(error as Error).message}`,
      { field: "upload_token_file", cause: error },
    );
  }
  const token = text.split("\n")[0].trim();
  if (token.length < 16) {
    throw new StoreHttpError(
      400,
      "invalid_config",
      `Cannot use upload token file "${path}": the token must have at least 16 characters`,
      { field: "upload_token_file" },
    );
  }
  return token;
}
