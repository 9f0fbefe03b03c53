/**
 * Declares the supervisor agents: `tml supervisor local` and `tml supervisor qemu`; `netboot`
 * registers beside them with its own driver. The code loads when one runs.
 */
import type { Command } from "commander";
import { envVarName } from "../../lib/config.ts";

/** The flags every supervisor takes; each names its environment variable. */
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
    .option(
      "--state-dir <dir>",
      `job directories and caches (${envVarName("state_dir")}, default .tml-data/supervisor-ID)`,
    )
    .option(
      "--heartbeat-interval <duration>",
      `puppet heartbeat interval; 3 missed = hung host (${envVarName("heartbeat_interval")}, 2s)`,
    )
    .option(
      "--ready-timeout <duration>",
      `time a host has to become ready (${envVarName("ready_timeout")}, default 2m)`,
    )
    .option(
      "--stop-grace <duration>",
      `time a workload gets between SIGTERM and SIGKILL (${envVarName("stop_grace")}, 5s)`,
    )
    .option(
      "--rendezvous <url>",
      `rendezvous server to expose job hosts' services on (${envVarName("rendezvous")})`,
    )
    .option(
      "--rendezvous-services <list>",
      `host ports to expose, NAME=PORT,... (${envVarName("rendezvous_services")}, default ssh=22)`,
    );
}

function flagsOf(options: Record<string, unknown>): Record<string, unknown> {
  return {
    switchboard: options.switchboard,
    id: options.id,
    token_file: options.tokenFile,
    tags: options.tags,
    image_store: options.imageStore,
    state_dir: options.stateDir,
    heartbeat_interval: options.heartbeatInterval,
    ready_timeout: options.readyTimeout,
    stop_grace: options.stopGrace,
    rendezvous: options.rendezvous,
    rendezvous_services: options.rendezvousServices,
  };
}

export function registerSupervisorRoleCommands(supervisor: Command): void {
  supervisorOptions(supervisor.command("local"))
    .description("run jobs as local processes (NO isolation: for developing workloads and tml)")
    .addHelpText(
      "after",
      `
The local supervisor runs each job's puppet (\`tml puppet\`) as a child process in a scratch
directory under the state directory, on this machine, as this user: the workload can read and
change anything this user can. There is NO isolation. Use it to develop workloads and tml
itself, never for jobs you do not trust. It speaks the same protocols as the QEMU supervisor.

Examples:
  tml supervisor local --switchboard http://127.0.0.1:7100 \\
    --id 3f0c2a9e-5b1d-4c8e-9f27-0d6a1b2c3d4e --token-file sup.token --tags board:dev
  TML_SWITCHBOARD=http://127.0.0.1:7100 TML_ID=3f0c… TML_TOKEN_FILE=sup.token tml supervisor local`,
    )
    .action(async (options) => {
      const { loadSupervisorConfig } = await import("./config.ts");
      const { runSupervisor } = await import("./run.ts");
      const { LocalDriver } = await import("./local_driver.ts");
      const { createLogger } = await import("../../lib/log.ts");
      const config = await loadSupervisorConfig({ file: options.config, flags: flagsOf(options) });
      const log = createLogger("supervisor:local");
      const driver = new LocalDriver({
        stateDir: config.state_dir,
        heartbeatIntervalMs: config.heartbeat_interval,
        readyTimeoutMs: config.ready_timeout,
        stopGraceMs: config.stop_grace,
      }, log);
      await runSupervisor(config, driver, log);
    });

  supervisorOptions(supervisor.command("qemu"))
    .description("run each job in a fresh QEMU VM booted from its image")
    .option("--qemu-binary <path>", `QEMU system emulator (${envVarName("qemu_binary")})`)
    .option("--qemu-img-binary <path>", `qemu-img (${envVarName("qemu_img_binary")})`)
    .option(
      "--qemu-args <json>",
      `machine arguments, a JSON array template (${envVarName("qemu_args")})`,
    )
    .option(
      "--start-script <path>",
      `run before each VM; prints tml-set-variable:KEY=VALUE (${envVarName("start_script")})`,
    )
    .option(
      "--working-disk-max-bytes <bytes>",
      `size of a job's disk (${envVarName("working_disk_max_bytes")})`,
    )
    .option(
      "--site-cache <dir>",
      `where images are cached (${envVarName("site_cache")}, default STATE_DIR/images)`,
    )
    .option(
      "--warm-start",
      `resume VMs from a snapshot of their image instead of booting them: the default (${
        envVarName("warm_start")
      })`,
    )
    .option("--no-warm-start", "boot every job's VM from its image")
    .option(
      "--snapshot-dir <dir>",
      `where warm-start snapshots are kept (${
        envVarName("snapshot_dir")
      }, default STATE_DIR/snapshots)`,
    )
    .addHelpText(
      "after",
      `
Each job gets a fresh VM: the supervisor fetches the job's image from the image store into its
site cache (only the blobs it lacks, each verified), checks its qcow2 layers, puts a thin
overlay on them, and boots it: directly (kernel, initrd and command line from the image), or
with UEFI firmware (OVMF) for Treadmill's disk images. The puppet in the guest reports to the
supervisor over virtio-serial; the guest's serial console becomes the job's log.

Warm start (the default; --no-warm-start turns it off): the first job of an image (per machine
arguments) boots it once more to make a snapshot of the booted guest; every later job's VM
resumes from it in about a second instead of booting, with its own disk overlay, secret, clock
and reseeded random generator. Machines that depend on the job (a start script, or
{job_id}/{job_workdir} in qemu_args) boot cold.

qemu_args is a template: {job_id}, {job_workdir}, {main_disk_image}, {state_dir} and the
variables the start script sets are filled in. tml attaches the job's disk as virtio unless
the template names {main_disk_image}. Without qemu_args the VM has 1 CPU, 512 MiB and no
network, under software emulation; a site with working KVM sets "-accel", "kvm" itself.

Examples:
  tml supervisor qemu --switchboard http://127.0.0.1:7100 --image-store http://127.0.0.1:7200 \\
    --id 3f0c2a9e-5b1d-4c8e-9f27-0d6a1b2c3d4e --token-file sup.token --tags board:nrf52840dk
  tml supervisor qemu --config /etc/tml/supervisor.toml

  # supervisor.toml: pass a board's USB device through
  qemu_args = ["-accel", "kvm", "-m", "2048",
               "-device", "qemu-xhci", "-device", "usb-host,hostbus={usb_bus},hostaddr={usb_addr}"]
  start_script = "/etc/tml/find-board.sh"  # prints tml-set-variable:usb_bus=1 …`,
    )
    .action(async (options) => {
      const { runQemuSupervisor } = await import("./qemu_supervisor.ts");
      await runQemuSupervisor({
        file: options.config,
        flags: {
          ...flagsOf(options),
          qemu_binary: options.qemuBinary,
          qemu_img_binary: options.qemuImgBinary,
          qemu_args: options.qemuArgs,
          start_script: options.startScript,
          working_disk_max_bytes: options.workingDiskMaxBytes,
          site_cache: options.siteCache,
          warm_start: options.warmStart,
          snapshot_dir: options.snapshotDir,
        },
      });
    });
}
