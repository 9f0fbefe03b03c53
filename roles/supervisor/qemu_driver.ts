/**
 * The QEMU host driver (`tml supervisor qemu`): boots one VM per job from an image in the site
 * cache, with software emulation (TCG). This first version does direct kernel boot (tml's
 * kernel-boot manifest extension): QEMU loads the image's kernel and initrd blobs, and the
 * image's qcow2 chain (when it has one) is validated and attached through a thin per-job
 * overlay. The puppet inside reaches the supervisor over a virtio-serial port named
 * `PUPPET_VIRTIO_PORT_NAME`, backed by a unix socket in the job directory, and reads its
 * per-job secret from the fw_cfg file `PUPPET_FW_CFG_SECRET`: the secret never appears on a
 * command line or in the image.
 *
 * `start` resolves once the puppet reports ready, so every start failure (image missing or
 * invalid, QEMU failing to start, the guest dying or not getting ready in time) is a
 * HostStartError. Stopping asks the puppet to shut down (the guest then powers off), then QMP
 * `system_powerdown`, then `quit`, then SIGKILL by pid. QEMU writes a pid file into the job
 * directory, which is how a restarted supervisor finds the VMs a killed one left behind.
 */
import { createLogger, type Logger } from "../../lib/log.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import { PUPPET_FW_CFG_SECRET, PUPPET_VIRTIO_PORT_NAME } from "../../lib/protocol/puppet.ts";
import {
  blobPath,
  type BlobStore,
  DirectoryBackend,
  imageKindOf,
  kernelBootOf,
  qemuLayerChain,
} from "../../lib/store/mod.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import { QEMU_IMG, QEMU_SYSTEM } from "../../lib/qemu_programs.ts";
import {
  type HostDriver,
  type HostEvents,
  HostStartError,
  type Leftover,
  type RunningHost,
} from "./host_driver.ts";
import { generatePuppetSecret, PuppetChannel } from "./puppet_channel.ts";
import { killProcesses } from "./process_marks.ts";
import { createOverlay, validateLayerChain } from "./qemu_disk.ts";
import { QmpClient } from "./qemu_qmp.ts";

export interface QemuDriverOptions {
  /** Job directories go to `<stateDir>/jobs/<job id>`. */
  stateDir: string;
  /** The site cache the images are booted from; it must be a directory store. */
  store: BlobStore;
  /** Default: `qemu-system-x86_64`, installed from Debian's `qemu-system-x86` when missing. */
  qemuBinary?: string;
  /** Default: `qemu-img` from `qemu-utils`. */
  qemuImgBinary?: string;
  memoryMib?: number;
  /** How long the guest has from QEMU's start to the puppet's ready (default 120 s). */
  bootTimeoutMs?: number;
  /** How long stop waits after each step (puppet shutdown, powerdown) before the next. */
  stopGraceMs?: number;
  heartbeatIntervalMs?: number;
}

/** A unix socket path holds at most 107 bytes. */
const MAX_SOCKET_PATH = 107;
const CONSOLE_TAIL_BYTES = 2_000;

export class QemuDriver implements HostDriver {
  readonly name = "qemu";
  readonly #log: Logger;
  /** Job directories of the VMs this driver runs now; anything else under jobs/ is left over. */
  readonly #active = new Set<string>();
  #programs?: Promise<{ qemu: string; qemuImg: string }>;

  constructor(private readonly options: QemuDriverOptions, log?: Logger) {
    this.#log = log ?? createLogger("supervisor:qemu");
  }

  get #jobsDir(): string {
    return `${this.options.stateDir}/jobs`;
  }

  #findPrograms(): Promise<{ qemu: string; qemuImg: string }> {
    this.#programs ??= (async () => ({
      qemu: this.options.qemuBinary ??
        await requireProgram(QEMU_SYSTEM),
      qemuImg: this.options.qemuImgBinary ??
        await requireProgram(QEMU_IMG),
    }))();
    this.#programs.catch(() => (this.#programs = undefined));
    return this.#programs;
  }

  async start(job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost> {
    const dir = `${this.#jobsDir}/${job.job_id}`;
    this.#active.add(dir);
    const host = new QemuHost(job, dir, events, this.options, this.#log);
    try {
      await host.launch(await this.#findPrograms(), signal);
    } catch (error) {
      await host.stop("start failed");
      this.#active.delete(dir);
      throw error instanceof HostStartError
        ? error
        : new HostStartError(`Cannot start a VM: ${(error as Error).message}`, error);
    }
    return {
      stop: async (reason) => {
        await host.stop(reason);
        this.#active.delete(dir);
      },
    };
  }

  async listLeftovers(): Promise<Leftover[]> {
    return describeLeftovers(await this.#staleDirectories());
  }

  async cleanupLeftovers(): Promise<Leftover[]> {
    const stale = await this.#staleDirectories();
    const leftovers = describeLeftovers(stale);
    await killProcesses(stale.flatMap(({ pid }) => pid === undefined ? [] : [pid]));
    for (const { dir } of stale) await Deno.remove(dir, { recursive: true }).catch(() => {});
    for (const leftover of leftovers) {
      this.#log.info("removed a leftover", { job_id: leftover.job_id, what: leftover.description });
    }
    return leftovers;
  }

  /** Job directories no running host owns, with the pid of their QEMU if it still runs. */
  async #staleDirectories(): Promise<{ dir: string; jobId: string; pid?: number }[]> {
    const stale: { dir: string; jobId: string; pid?: number }[] = [];
    try {
      for await (const entry of Deno.readDir(this.#jobsDir)) {
        const dir = `${this.#jobsDir}/${entry.name}`;
        if (this.#active.has(dir)) continue;
        stale.push({ dir, jobId: entry.name, pid: await runningQemuOf(dir) });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return stale;
  }
}

function describeLeftovers(stale: { dir: string; jobId: string; pid?: number }[]): Leftover[] {
  return stale.flatMap(({ dir, jobId, pid }) => [
    ...(pid === undefined ? [] : [{ job_id: jobId, description: `process ${pid}` }]),
    { job_id: jobId, description: `directory ${dir}` },
  ]);
}

/** The pid in `<dir>/qemu.pid` when that process is still a QEMU started for `dir`. */
async function runningQemuOf(dir: string): Promise<number | undefined> {
  const pid = Number((await Deno.readTextFile(`${dir}/qemu.pid`).catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    // A reused pid belongs to some other program: the job directory is on QEMU's command line.
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
    return cmdline.includes("qemu") && cmdline.includes(`${dir}/`) && !zombie ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** One job's VM: its directory, overlay, sockets and QEMU process. */
class QemuHost {
  #channel?: PuppetChannel;
  #qemu?: Deno.ChildProcess;
  #stderr = "";
  #stopping?: Promise<void>;

  constructor(
    private readonly job: JobSpec,
    private readonly dir: string,
    private readonly events: HostEvents,
    private readonly options: QemuDriverOptions,
    private readonly log: Logger,
  ) {}

  async launch(programs: { qemu: string; qemuImg: string }, signal: AbortSignal): Promise<void> {
    const stopped = () => {
      if (signal.aborted) throw new HostStartError("Cannot start a VM: the job was stopped");
    };
    const imageId = this.job.image_id;
    this.events.progress("allocating", "checking the image and creating the job directory");
    const backend = this.options.store.backend;
    if (!(backend instanceof DirectoryBackend)) {
      throw new HostStartError("Cannot start a VM: the site cache must be a directory store");
    }
    const fileOf = (digest: string) => `${backend.root}/${blobPath(digest)}`;
    const manifest = await this.options.store.readManifest(imageId).catch((error) => {
      throw new HostStartError(
        `Cannot start a VM: image "${imageId}" is invalid: ${error.message}`,
        error,
      );
    });
    if (manifest === undefined) {
      throw new HostStartError(`Cannot start a VM: image "${imageId}" is not in the site cache`);
    }
    let boot: ReturnType<typeof kernelBootOf>;
    let chain: ReturnType<typeof qemuLayerChain> = [];
    try {
      boot = kernelBootOf(manifest);
      if (imageKindOf(manifest) === "qemu") chain = qemuLayerChain(manifest);
    } catch (error) {
      throw new HostStartError(
        `Cannot start a VM: image "${imageId}" is invalid: ${(error as Error).message}`,
        error,
      );
    }
    if (boot === undefined) {
      throw new HostStartError(
        `Cannot start a VM: image "${imageId}" has no kernel-boot attributes ` +
          "(UEFI disk images are not supported yet)",
      );
    }
    for (const blob of [boot.kernel, boot.initrd, ...chain]) {
      if (blob !== undefined && !await this.options.store.has(blob.sha256)) {
        throw new HostStartError(
          `Cannot start a VM: blob "${blob.label}" (${blob.sha256}) of image "${imageId}" ` +
            "is not in the site cache",
        );
      }
    }

    const puppetSocket = `${this.dir}/puppet.sock`;
    const qmpSocket = `${this.dir}/qmp.sock`;
    if (puppetSocket.length > MAX_SOCKET_PATH || this.dir.includes(",")) {
      throw new HostStartError(
        `Cannot start a VM: the job directory "${this.dir}" is too long for a unix socket or ` +
          "holds a comma; choose a shorter state_dir",
      );
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const secret = generatePuppetSecret();
    await Deno.writeTextFile(`${this.dir}/secret`, secret, { mode: 0o600 });
    const disk: string[] = [];
    if (chain.length > 0) {
      await validateLayerChain(programs.qemuImg, chain, (layer) => fileOf(layer.sha256));
      const overlay = `${this.dir}/disk.qcow2`;
      await createOverlay(programs.qemuImg, fileOf(chain[chain.length - 1].sha256), overlay);
      disk.push("-drive", `file=${overlay},format=qcow2,if=virtio`);
    }
    stopped();

    let cmdline = boot.cmdline ?? "console=ttyS0";
    // A panicking guest must end QEMU (with -no-reboot), not hang.
    if (!/(^| )panic=/.test(cmdline)) cmdline += " panic=-1";
    const args = [
      "-name",
      `tml-${this.job.job_id}`,
      "-accel",
      "tcg",
      // Under TCG the emulated CPU's features are free, and with them the guest's deno starts
      // in ~1.3 s instead of ~2 s (the default qemu64 model), measured.
      "-cpu",
      "max",
      "-smp",
      "1",
      "-m",
      String(this.options.memoryMib ?? 512),
      "-display",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-nic",
      "none",
      "-pidfile",
      `${this.dir}/qemu.pid`,
      "-serial",
      `file:${this.dir}/console.log`,
      "-qmp",
      `unix:${qmpSocket},server=on,wait=off`,
      "-kernel",
      fileOf(boot.kernel.sha256),
      ...(boot.initrd === undefined ? [] : ["-initrd", fileOf(boot.initrd.sha256)]),
      "-append",
      cmdline,
      "-fw_cfg",
      `name=${PUPPET_FW_CFG_SECRET},file=${this.dir}/secret`,
      "-chardev",
      `socket,id=puppet,path=${puppetSocket},server=on,wait=off`,
      "-device",
      "virtio-serial",
      "-device",
      `virtserialport,chardev=puppet,name=${PUPPET_VIRTIO_PORT_NAME}`,
      ...disk,
    ];

    let becameReady!: () => void;
    const readyNow = new Promise<void>((resolve) => (becameReady = resolve));
    let isReady = false;
    const channel = new PuppetChannel({
      secret,
      job: {
        job_id: this.job.job_id,
        parameters: this.job.parameters,
        ssh_keys: this.job.ssh_keys,
        workload: this.job.workload,
      },
      events: {
        progress: (subState, message) => this.events.progress(subState, message),
        ready: () => {
          isReady = true;
          becameReady();
          this.events.ready();
        },
        output: (bytes) => this.events.output(bytes),
        workloadFinished: (result) => this.events.workloadFinished(result),
        terminateRequested: () => this.events.terminateRequested(),
        hostLost: (loss) => this.events.hostLost(loss),
      },
      log: this.log,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      // The connection opens before the guest boots; its puppet speaks only once it runs.
      authTimeoutMs: this.options.bootTimeoutMs ?? 120_000,
    });
    this.#channel = channel;

    this.events.progress("booting", "starting QEMU");
    const started = performance.now();
    let qemu: Deno.ChildProcess;
    try {
      qemu = new Deno.Command(programs.qemu, {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        // Its own process group: a Ctrl-C meant for the supervisor does not reach the VM.
        detached: true,
      }).spawn();
    } catch (error) {
      throw new HostStartError(`Cannot start QEMU: ${(error as Error).message}`, error);
    }
    this.#qemu = qemu;
    void this.#collectStderr(qemu.stderr);
    const exited = qemu.status.then(async (status) => {
      channel.close();
      // Let the stderr reader see QEMU's last words.
      await new Promise((resolve) => setTimeout(resolve, 20));
      return status;
    });
    void exited.then(async (status) => {
      if (this.#stopping !== undefined || !isReady) return;
      const panicked = (await this.#consoleTail()).includes("Kernel panic");
      this.events.hostLost({
        kind: panicked || !status.success ? "crashed" : "exited",
        message: panicked
          ? "the guest kernel panicked"
          : `QEMU ${describeStatus(status)} (the guest powered off or died)`,
      });
    });
    void this.#servePuppet(puppetSocket, channel, qemu.status);

    const timeoutMs = this.options.bootTimeoutMs ?? 120_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const outcome = await Promise.race([
      readyNow.then(() => ({ kind: "ready" as const })),
      exited.then((status) => ({ kind: "exited" as const, status })),
      new Promise<{ kind: "timeout" }>((resolve) => {
        timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutMs);
      }),
      new Promise<{ kind: "aborted" }>((resolve) => {
        onAbort = () => resolve({ kind: "aborted" });
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort!);
    switch (outcome.kind) {
      case "ready":
        this.log.info("VM ready", {
          job_id: this.job.job_id,
          boot_ms: Math.round(performance.now() - started),
        });
        return;
      case "aborted":
        throw new HostStartError("Cannot start a VM: the job was stopped");
      case "timeout":
        throw new HostStartError(
          `Cannot start a VM: the puppet did not report ready within ${timeoutMs} ms; ` +
            `console ends with: ${await this.#consoleTail()}`,
        );
      case "exited":
        throw new HostStartError(
          `Cannot start a VM: QEMU ${describeStatus(outcome.status)} before the puppet was ` +
            `ready: ${this.#stderr.trim() || `console ends with: ${await this.#consoleTail()}`}`,
        );
    }
  }

  /** Connects to the puppet's socket (QEMU creates it shortly after it starts) and serves it. */
  async #servePuppet(
    path: string,
    channel: PuppetChannel,
    exited: Promise<Deno.CommandStatus>,
  ): Promise<void> {
    let gone = false;
    void exited.then(() => (gone = true));
    while (!gone && this.#stopping === undefined) {
      let connection: Deno.UnixConn;
      try {
        connection = await Deno.connect({ transport: "unix", path });
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      // One connection lasts as long as QEMU; the guest's puppet may reopen its port inside it.
      await channel.serve(connection);
    }
  }

  async #collectStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-4_000);
    }
  }

  async #consoleTail(): Promise<string> {
    const text = await Deno.readTextFile(`${this.dir}/console.log`).catch(() => "");
    return text.slice(-CONSOLE_TAIL_BYTES).trim();
  }

  /** Ends the VM and removes the job directory; later calls wait for the first. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      const qemu = this.#qemu;
      const graceMs = this.options.stopGraceMs ?? 10_000;
      const exitedWithin = async (ms: number) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const done = await Promise.race([
          qemu!.status.then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
        ]);
        clearTimeout(timer);
        return done;
      };
      if (qemu !== undefined) {
        // The puppet ends its workload and exits; the guest's init then powers off.
        await this.#channel?.shutdown(reason);
        if (!await exitedWithin(graceMs)) {
          await this.#qmp("system_powerdown");
          if (!await exitedWithin(graceMs)) {
            await this.#qmp("quit");
            if (!await exitedWithin(2_000)) await killProcesses([qemu.pid]);
          }
        }
        await qemu.status;
      }
      this.#channel?.close();
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    })();
    return this.#stopping;
  }

  async #qmp(command: string): Promise<void> {
    try {
      const client = await QmpClient.connect(`${this.dir}/qmp.sock`, 2_000);
      try {
        await client.execute(command);
      } finally {
        client.close();
      }
    } catch (error) {
      this.log.warn("QMP command failed", { command, error: (error as Error).message });
    }
  }
}

function describeStatus(status: Deno.CommandStatus): string {
  return status.signal !== null
    ? `was killed by ${status.signal}`
    : `exited with code ${status.code}`;
}
