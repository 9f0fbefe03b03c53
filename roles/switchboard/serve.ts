/**
 * `tml switchboard serve`: opens the database (PostgreSQL, or PGlite under the data dir),
 * rebuilds the coordinator's view of every active job, serves the API, and prints the URL it
 * listens on. SIGINT/SIGTERM shut it down cleanly; a `kill -9` loses nothing, since the
 * database is the only state.
 */
import { loadConfig } from "../../lib/config.ts";
import { openSwitchboardDatabase } from "../../lib/db/open.ts";
import { createLogger } from "../../lib/log.ts";
import { buildApp } from "./app.ts";
import { SwitchboardConfig } from "./config.ts";
import { Coordinator } from "./coordinator.ts";
import { PrincipalCache } from "./principal_cache.ts";

export interface ServeOptions {
  config?: string;
  flags: Record<string, unknown>;
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfig(SwitchboardConfig, {
    file: options.config,
    flags: options.flags,
  });
  const log = createLogger("switchboard");
  const db = await openSwitchboardDatabase({
    databaseUrl: config.database_url,
    dataDir: config.data_dir,
  });
  const coordinator = new Coordinator(db, config, log);
  await coordinator.start();
  const app = buildApp({ db, config, log, principals: new PrincipalCache() }, coordinator);

  const separator = config.listen.lastIndexOf(":");
  const hostname = config.listen.slice(0, separator) || "0.0.0.0";
  const port = Number(config.listen.slice(separator + 1));
  const server = Deno.serve({
    hostname,
    port,
    onListen: ({ hostname, port }) => {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      console.log(`listening on http://${host}:${port}`);
      log.info("switchboard started", { url: `http://${host}:${port}`, database: db.kind });
    },
  }, app.fetch);

  const shutdown = async () => {
    log.info("switchboard shutting down");
    coordinator.stop();
    await server.shutdown();
    await db.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  await server.finished;
}
