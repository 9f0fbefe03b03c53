/**
 * Runs a supervisor: loads its config, cleans up what a previous run left behind, connects to
 * the switchboard and runs jobs on the given host driver until stopped.
 */
import { loadConfig } from "../../lib/config.ts";
import { TmlError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { SupervisorConfig } from "./config.ts";
import { SwitchboardConnection } from "./connection.ts";
import type { HostDriver } from "./host_driver.ts";
import { JobRunner } from "./job_runner.ts";

export async function runSupervisor(
  kind: string,
  makeDriver: (config: SupervisorConfig & { state_dir: string }) => HostDriver,
  sources: { config?: string; flags: Record<string, unknown> },
): Promise<void> {
  const loaded = await loadConfig(SupervisorConfig, { file: sources.config, flags: sources.flags });
  const config = { ...loaded, state_dir: loaded.state_dir ?? `.tml-data/supervisor-${loaded.id}` };
  const log = createLogger(`supervisor:${kind}`);
  let token: string;
  try {
    token = (await Deno.readTextFile(config.token_file)).trim();
  } catch (error) {
    throw new TmlError(
      "invalid_config",
      `Cannot read token_file "${config.token_file}": ${(error as Error).message}`,
      {
        status: 400,
        field: "token_file",
      },
    );
  }
  await Deno.mkdir(config.state_dir, { recursive: true });
  const driver = makeDriver(config);
  await driver.cleanupLeftovers();

  // The runner reports through the connection, which is created next (closures only).
  const runner = new JobRunner(driver, {
    report: (update) => connection.report(update),
    console: (jobId, offset, bytes) => connection.console(jobId, offset, bytes),
  }, log);
  const connection: SwitchboardConnection = new SwitchboardConnection({
    switchboardUrl: config.switchboard,
    supervisorId: config.id,
    token,
    tags: config.tags,
    driver: driver.name,
    log,
  }, {
    heldJobs: () => runner.heldJobs(),
    startJob: (job) => Promise.resolve(runner.start(job)),
    stopJob: (jobId, reason) => runner.stop(jobId, reason),
  });
  const shutdown = () => {
    log.info("supervisor shutting down");
    connection.close();
    const held = runner.heldJobs()[0];
    const done = held === undefined ? Promise.resolve() : runner.stop(held.job_id, "superseded");
    done.finally(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  log.info("supervisor starting", { supervisor_id: config.id, driver: driver.name });
  await connection.run();
}
