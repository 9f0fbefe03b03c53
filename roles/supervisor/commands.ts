/** Declares `tml supervisor local` (and, as drivers land, `qemu` and `netboot`). */
import type { Command } from "commander";
import { envVarName } from "../../lib/config.ts";

function supervisorOptions(command: Command): Command {
  return command
    .option("--config <file>", "TOML config file (TML_CONFIG)", Deno.env.get("TML_CONFIG"))
    .option("--switchboard <url>", `switchboard base URL (${envVarName("switchboard")})`)
    .option("--id <uuid>", `this supervisor's id (${envVarName("id")})`)
    .option(
      "--token-file <file>",
      `file holding this supervisor's token (${envVarName("token_file")})`,
    )
    .option("--tags <tags>", `comma-separated tags to advertise (${envVarName("tags")})`)
    .option("--image-store <url>", `image store URL (${envVarName("image_store")})`)
    .option("--state-dir <dir>", `job directories and caches (${envVarName("state_dir")})`);
}

function flagsOf(options: Record<string, unknown>): Record<string, unknown> {
  return {
    switchboard: options.switchboard,
    id: options.id,
    token_file: options.tokenFile,
    tags: options.tags,
    image_store: options.imageStore,
    state_dir: options.stateDir,
  };
}

export function registerSupervisorRoleCommands(supervisor: Command): void {
  supervisorOptions(supervisor.command("local"))
    .description("run jobs as local processes (NO isolation: for developing workloads and tml)")
    .addHelpText(
      "after",
      `
The local supervisor runs each job's puppet as a child process in a scratch directory, on this
machine, as this user: a workload can read and change anything this user can. Use it to develop
workloads and tml itself, never for untrusted jobs.

Example:
  tml supervisor local --switchboard http://127.0.0.1:7100 --id 3f0c… --token-file sup.token --tags board:dev`,
    )
    .action(async (options) => {
      const { runSupervisor } = await import("./run.ts");
      const { LocalDriver } = await import("./local_driver.ts");
      await runSupervisor("local", (config) => new LocalDriver({ stateDir: config.state_dir }), {
        config: options.config,
        flags: flagsOf(options),
      });
    });
}
