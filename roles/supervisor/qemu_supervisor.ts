/**
 * `tml supervisor qemu`: loads the QEMU supervisor's configuration, opens the site cache and
 * its fetcher, and runs the supervisor with a QemuDriver.
 */
import { createLogger } from "../../lib/log.ts";
import { ImageFetcher, openDirectoryStore } from "../../lib/store/mod.ts";
import { loadSupervisorConfig, type SupervisorConfigSources } from "./config.ts";
import { QemuSupervisorConfig } from "./qemu_config.ts";
import { QemuDriver } from "./qemu_driver.ts";
import { runSupervisor } from "./run.ts";

export async function runQemuSupervisor(sources: SupervisorConfigSources): Promise<void> {
  const config = await loadSupervisorConfig(sources, QemuSupervisorConfig);
  const log = createLogger("supervisor:qemu");
  const store = await openDirectoryStore(config.site_cache ?? `${config.state_dir}/images`);
  const driver = new QemuDriver({
    stateDir: config.state_dir,
    store,
    fetcher: config.image_store === undefined
      ? undefined
      : new ImageFetcher({ storeUrl: config.image_store, store }),
    qemuBinary: config.qemu_binary,
    qemuImgBinary: config.qemu_img_binary,
    qemuArgs: config.qemu_args,
    // Only a rendezvous server reaches the guests' services: without one they get no network.
    exposedPorts: config.rendezvous === undefined
      ? []
      : config.rendezvous_services.map((service) => service.port),
    startScript: config.start_script,
    workingDiskMaxBytes: config.working_disk_max_bytes,
    warmStart: config.warm_start,
    snapshotDir: config.snapshot_dir,
    bootTimeoutMs: config.ready_timeout,
    stopGraceMs: config.stop_grace,
    heartbeatIntervalMs: config.heartbeat_interval,
  }, log);
  await runSupervisor(config, driver, log);
}
