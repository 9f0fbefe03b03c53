/**
 * Runs a supervisor: cleans up what a previous run left behind, connects to the switchboard
 * (and to a rendezvous server, when configured, to expose each job's host services) and runs
 * jobs on the given host driver until stopped (SIGINT/SIGTERM end the current job first) or
 * refused.
 */
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import type { Logger } from "../../lib/log.ts";
import type { ResolvedSupervisorConfig } from "./config.ts";
import { SwitchboardConnection } from "./connection.ts";
import type { HostDriver } from "./host_driver.ts";
import { JobRunner } from "./job_runner.ts";
import { RendezvousAgent } from "./rendezvous_agent.ts";

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

  const rendezvous = config.rendezvous === undefined ? undefined : new RendezvousAgent({
    url: config.rendezvous,
    services: config.rendezvous_services,
    switchboard: new SwitchboardClient(config.switchboard, config.token),
    driver,
    log: log.child("rendezvous"),
  });
  // The runner reports through the connection, which needs the runner's held jobs: closures.
  const runner: JobRunner = new JobRunner(driver, {
    report: (update) => {
      connection.report(update);
      rendezvous?.onJobReport(update);
    },
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
      await rendezvous?.stop(3_000);
      // Let the switchboard hear how the job ended before the connection goes.
      if (!await connection.flush(5_000)) log.warn("shutting down with unacknowledged updates");
      connection.close();
    })();
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  log.info("supervisor starting", { supervisor_id: config.id, driver: driver.name });
  const agent = rendezvous?.run();
  try {
    await connection.run();
    await stopping;
    await agent;
  } finally {
    Deno.removeSignalListener("SIGINT", shutdown);
    Deno.removeSignalListener("SIGTERM", shutdown);
  }
}
