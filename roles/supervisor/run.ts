/**
 * Runs a supervisor: cleans up what a previous run left behind, connects to the switchboard
 * and runs jobs on the given host driver until stopped (SIGINT/SIGTERM end the current job
 * first) or refused.
 */
import type { Logger } from "../../lib/log.ts";
import type { ResolvedSupervisorConfig } from "./config.ts";
import { SwitchboardConnection } from "./connection.ts";
import type { HostDriver } from "./host_driver.ts";
import { JobRunner } from "./job_runner.ts";

export async function runSupervisor(
  config: ResolvedSupervisorConfig,
  driver: HostDriver,
  log: Logger,
): Promise<void> {
  await Deno.mkdir(config.state_dir, { recursive: true });
  const leftovers = await driver.cleanupLeftovers();
  if (leftovers.length > 0) {
    log.info("cleaned up after a previous run", { items: leftovers.length });
  }

  // The runner reports through the connection, which needs the runner's held jobs: closures.
  const runner: JobRunner = new JobRunner(driver, {
    report: (update) => connection.report(update),
    console: (jobId, offset, bytes) => connection.console(jobId, offset, bytes),
  }, log);
  const connection = new SwitchboardConnection({
    switchboardUrl: config.switchboard,
    supervisorId: config.id,
    token: config.token,
    tags: config.tags,
    driver: driver.name,
    log,
  }, {
    heldJobs: () => runner.heldJobs(),
    startJob: (job) => runner.start(job),
    stopJob: (jobId, reason) => runner.stop(jobId, reason),
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      log.info("supervisor shutting down");
      await runner.shutdown();
      // Let the switchboard hear how the job ended before the connection goes.
      if (!await connection.flush(5_000)) log.warn("shutting down with unacknowledged updates");
      connection.close();
    })();
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  log.info("supervisor starting", { supervisor_id: config.id, driver: driver.name });
  try {
    await connection.run();
    await stopping;
  } finally {
    Deno.removeSignalListener("SIGINT", shutdown);
    Deno.removeSignalListener("SIGTERM", shutdown);
  }
}
