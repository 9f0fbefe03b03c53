/** Declares `tml switchboard serve`; the server code loads only when it runs. */
import type { Command } from "commander";
import { envVarName } from "../../lib/config.ts";

export function registerSwitchboardCommands(program: Command): void {
  const switchboard = program.command("switchboard").description(
    "the central coordinator: users, tokens, job queue, scheduler",
  );
  switchboard.command("serve")
    .description("run the switchboard")
    .option("--config <file>", "TOML config file (TML_CONFIG)", Deno.env.get("TML_CONFIG"))
    .option(
      "--listen <host:port>",
      `address to listen on (${envVarName("listen")}, default 127.0.0.1:7100)`,
    )
    .option(
      "--database-url <url>",
      `PostgreSQL URL; without it, embedded PGlite (${envVarName("database_url")})`,
    )
    .option("--data-dir <dir>", `directory for embedded state (${envVarName("data_dir")})`)
    .option(
      "--image-store-url <url>",
      `image store that enqueue checks images against (${envVarName("image_store_url")})`,
    )
    .option(
      "--keepalive-interval <duration>",
      `supervisor ping interval (${envVarName("keepalive_interval")}, default 10s)`,
    )
    .option(
      "--supervisor-grace <duration>",
      `how long a disconnected supervisor keeps its job (${
        envVarName("supervisor_grace")
      }, default 60s)`,
    )
    .option(
      "--stop-grace <duration>",
      `how long a supervisor has to confirm a stop (${envVarName("stop_grace")}, default 2m)`,
    )
    .addHelpText(
      "after",
      `
Examples:
  tml switchboard serve                                   # PGlite under .tml-data/switchboard
  tml switchboard serve --listen 0.0.0.0:7100 --database-url postgres://tml@db/treadmill_switchboard`,
    )
    .action(async (options) => {
      const { serve } = await import("./serve.ts");
      const {
        config,
        listen,
        databaseUrl,
        dataDir,
        imageStoreUrl,
        keepaliveInterval,
        supervisorGrace,
        stopGrace,
      } = options;
      await serve({
        config,
        flags: {
          listen,
          database_url: databaseUrl,
          data_dir: dataDir,
          image_store_url: imageStoreUrl,
          keepalive_interval: keepaliveInterval,
          supervisor_grace: supervisorGrace,
          stop_grace: stopGrace,
        },
      });
    });
}
