/**
 * The QEMU host driver (`tml supervisor qemu`): boots one VM per job from an image in the site
 * cache. Per job it fetches the image into the cache (`fetching_image`), checks it and the qcow2
 * layer chain, runs the site's start script and puts a thin overlay on the read-only top layer
 * (`allocating`), and starts QEMU (`booting`) with the site's machine arguments (`qemu_args`)
 * plus what tml needs: the serial console into a file that is streamed as the job's log, QMP,
 * and the puppet's channel. Two boot styles: tml's kernel-boot manifest extension (QEMU loads
 * the image's kernel and initrd blobs), and Treadmill's UEFI disk images (OVMF firmware).
 *
 * A VM has no network unless the site's `qemu_args` gives it one or the supervisor exposes guest
 * ports (its rendezvous services): then QEMU's user network forwards each from a free port on
 * 127.0.0.1, which `hostAddress` tells while the job runs (`qemu_network.ts` has the rule).
 *
 * The puppet inside reaches the supervisor over a virtio-serial port named
 * `PUPPET_VIRTIO_PORT_NAME`, backed by a unix socket in the job directory, and reads its per-job
 * secret from the fw_cfg file `PUPPET_FW_CFG_SECRET`: the secret never appears on a command line
 * or in the image.
 *
 * `start` resolves once QEMU runs; a guest that dies or is not ready within the boot timeout is
 * then reported with `hostLost` (the job runner makes that a start error before ready). Stopping
 * asks the puppet to shut down (the guest then powers off), then QMP `system_powerdown`, then
 * `quit`, then SIGKILL by pid; a guest that never got ready skips straight to `quit`. QEMU writes
 * a pid file into the job directory, which is how a restarted supervisor finds the VMs a killed
 * one left behind.
 */
import { createLogger, type Logger } from "../../lib/log.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import { PUPPET_FW_CFG_SECRET, PUPPET_VIRTIO_PORT_NAME } from "../../lib/protocol/puppet.ts";
import {
  blobPath,
  type BlobStore,
  DirectoryBackend,
  type ImageFetcher,
  imageKindOf,
  type ImageManifest,
  kernelBootOf,
  qemuLayerChain,
} from "../../lib/store/mod.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import { QEMU_IMG, QEMU_SYSTEM, requireOvmf } from "../../lib/qemu_programs.ts";
import { ConsoleFollower } from "./console_follower.ts";
import {
  type HostAddress,
  type HostDriver,
  type HostEvents,
  HostStartError,
  type Leftover,
  type RunningHost,
} from "./host_driver.ts";
import { generatePuppetSecret, PuppetChannel } from "./puppet_channel.ts";
import { killProcesses } from "./process_marks.ts";
import { defaultQemuArgs, expandQemuArgs, templateAttachesDisk } from "./qemu_args.ts";
import { createOverlay, validateLayerChain } from "./qemu_disk.ts";
import { runningQemuOf } from "./qemu_pidfile.ts";
import {
  QemuSnapshots,
  resumeArgs,
  resumeSnapshot,
  type Snapshot,
  SNAPSHOT_PLACEHOLDER_DIR,
  type TemplateVm,
} from "./qemu_snapshot.ts";
import { fetchJobImage } from "./qemu_image_fetch.ts";
import { networkArgs, readHostForwards } from "./qemu_network.ts";
import { QmpClient, withStartingQemu } from "./qemu_qmp.ts";
import { runStartScript } from "./start_script.ts";
import { SiteCacheCheck } from "./site_cache_check.ts";

export interface QemuDriverOptions {
  /** Job directories go to `<stateDir>/jobs/<job id>`. */
  stateDir: string;
  /** The site cache the images are booted from; it must be a directory store. */
  store: BlobStore;
  /** Fills the site cache from the image store; without one, images must already be cached. */
  fetcher?: ImageFetcher;
  /** Default: `qemu-system-x86_64`, installed from Debian's `qemu-system-x86` when missing. */
  qemuBinary?: string;
  /** Default: `qemu-img` from `qemu-utils`. */
  qemuImgBinary?: string;
  /** The machine's arguments, a template (`qemu_args.ts`); default `defaultQemuArgs()`. */
  qemuArgs?: string[];
  /**
   * The guest's TCP ports the supervisor reaches (its `rendezvous_services`): each VM forwards
   * them from free ports on 127.0.0.1, which `hostAddress` tells (`qemu_network.ts`). None:
   * the VM has no network unless `qemuArgs` gives it one.
   */
  exposedPorts?: number[];
  /** Run before each VM starts; its `tml-set-variable:` lines add template variables. */
  startScript?: string;
  /**
   * Resume each job's VM from a snapshot of its image booted once (`qemu_snapshot.ts`) rather
   * than boot it (default true). Machines that depend on the job boot cold regardless.
   */
  warmStart?: boolean;
  /**
   * Where warm-start snapshots live (default `<stateDir>/snapshots`); supervisors on one
   * machine may share one.
   */
  snapshotDir?: string;
  /** Size the job's disk is extended to; images with a larger disk are refused. */
  workingDiskMaxBytes?: number;
  /** How long the guest has from QEMU's start to the puppet's ready (default 120 s). */
  bootTimeoutMs?: number;
  /** How long stop waits after each step (puppet shutdown, powerdown) before the next. */
  stopGraceMs?: number;
  heartbeatIntervalMs?: number;
}

/** A unix socket path holds at most 107 bytes. */
const MAX_SOCKET_PATH = 107;
const CONSOLE_TAIL_BYTES = 2_000;
/**
 * How far back a panic's first line is looked for: the call trace and registers after it take
 * 2-3 KB, more when the stack holds stale frames (a 2 KB window missed it, seen).
 */
const PANIC_WINDOW_BYTES = 16_000;

export class QemuDriver implements HostDriver {
  readonly name = "qemu";
  readonly #log: Logger;
  /** Job directories of the VMs this driver runs now; anything else under jobs/ is left over. */
  readonly #active = new Set<string>();
  /** The VMs that started, by job id, until they are stopped. */
  readonly #hosts = new Map<string, QemuHost>();
  #programs?: Promise<QemuPrograms>;
  readonly #siteCache: SiteCacheCheck;
  readonly #snapshots?: QemuSnapshots;

  constructor(private readonly options: QemuDriverOptions, log?: Logger) {
    this.#log = log ?? createLogger("supervisor:qemu");
    const backend = options.store.backend;
    if (!(backend instanceof DirectoryBackend)) {
      throw new TypeError(
        "QemuDriver: the site cache must be a directory store (QEMU opens files)",
      );
    }
    if (options.warmStart !== false) {
      this.#snapshots = new QemuSnapshots(
        options.snapshotDir ?? `${options.stateDir}/snapshots`,
        this.#log,
      );
    }
    this.#siteCache = new SiteCacheCheck(
      options.store,
      (digest) => `${backend.root}/${blobPath(digest)}`,
    );
  }

  get #jobsDir(): string {
    return `${this.options.stateDir}/jobs`;
  }

  #findPrograms(): Promise<QemuPrograms> {
    this.#programs ??= (async () => ({
      qemu: this.options.qemuBinary ?? await requireProgram(QEMU_SYSTEM),
      qemuImg: this.options.qemuImgBinary ?? await requireProgram(QEMU_IMG),
    }))();
    this.#programs.catch(() => (this.#programs = undefined));
    return this.#programs;
  }

  async start(job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost> {
    const dir = `${this.#jobsDir}/${job.job_id}`;
    this.#active.add(dir);
    const host = new QemuHost(
      job,
      dir,
      events,
      this.options,
      this.#siteCache,
      this.#snapshots,
      this.#log,
    );
    try {
      await host.launch(this.#findPrograms(), signal);
    } catch (error) {
      await host.stop("start failed");
      this.#active.delete(dir);
      throw error instanceof HostStartError
        ? error
        : new HostStartError(`Cannot start a VM: ${(error as Error).message}`, error);
    }
    this.#hosts.set(job.job_id, host);
    return {
      stop: async (reason) => {
        await host.stop(reason);
        this.#hosts.delete(job.job_id);
        this.#active.delete(dir);
      },
    };
  }

  /** The forward of the guest's `port` while the job's VM runs (none once it is stopping). */
  hostAddress(jobId: string, port: number): HostAddress | undefined {
    return this.#hosts.get(jobId)?.hostAddress(port);
  }

  async listLeftovers(): Promise<Leftover[]> {
    return describeLeftovers(await this.#staleDirectories());
  }

  async cleanupLeftovers(): Promise<Leftover[]> {
    const stale = await this.#staleDirectories();
    const leftovers = describeLeftovers(stale);
    await killProcesses(stale.flatMap(({ pid }) => pid === undefined ? [] : [pid]));
    await this.#snapshots?.removeUnfinished();
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

interface QemuPrograms {
  qemu: string;
  qemuImg: string;
}

function describeLeftovers(stale: { dir: string; jobId: string; pid?: number }[]): Leftover[] {
  return stale.flatMap(({ dir, jobId, pid }) => [
    ...(pid === undefined ? [] : [{ job_id: jobId, description: `process ${pid}` }]),
    { job_id: jobId, description: `directory ${dir}` },
  ]);
}

/** How the image boots, and the files of its blobs in the site cache. */
type BootPlan =
  & { fileOf: (digest: string) => string }
  & (
    | { kind: "kernel"; kernel: string; initrd?: string; cmdline: string; disk?: DiskPlan }
    | { kind: "uefi"; disk: DiskPlan }
  );

interface DiskPlan {
  chain: ReturnType<typeof qemuLayerChain>;
}

/** One job's VM: its directory, overlay, sockets and QEMU process. */
class QemuHost {
  #channel?: PuppetChannel;
  #console?: ConsoleFollower;
  #qemu?: Deno.ChildProcess;
  #stderr = "";
  #ready = false;
  #bootTimer?: ReturnType<typeof setTimeout>;
  #stopping?: Promise<void>;
  /** Where the supervisor reaches the guest's ports, by guest port, once QEMU runs. */
  #forwards = new Map<number, HostAddress>();

  constructor(
    private readonly job: JobSpec,
    private readonly dir: string,
    private readonly events: HostEvents,
    private readonly options: QemuDriverOptions,
    private readonly siteCache: SiteCacheCheck,
    private readonly snapshots: QemuSnapshots | undefined,
    private readonly log: Logger,
  ) {}

  async launch(findPrograms: Promise<QemuPrograms>, signal: AbortSignal): Promise<void> {
    const stopped = () => {
      if (signal.aborted) throw new HostStartError("Cannot start a VM: the job was stopped");
    };
    const manifest = await fetchJobImage({
      jobId: this.job.job_id,
      imageId: this.job.image_id,
      store: this.options.store,
      fetcher: this.options.fetcher,
      progress: (message) => this.events.progress("fetching_image", message),
      log: this.log,
    }, signal);
    stopped();
    this.events.progress("allocating", "checking the image and preparing the job's disk");
    const programs = await findPrograms;
    const plan = this.#bootPlan(manifest);
    await this.siteCache.check(this.job.image_id, blobsOf(plan));

    const puppetSocket = `${this.dir}/puppet.sock`;
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
    const topLayer = plan.disk === undefined ? undefined : await this.#checkDisk(programs, plan);
    const scriptVariables = this.options.startScript === undefined ? {} : await runStartScript({
      script: this.options.startScript,
      env: { TML_JOB_ID: this.job.job_id, TML_JOB_WORKDIR: this.dir },
      signal,
      log: this.log,
    });
    stopped();

    const template = this.options.qemuArgs ?? defaultQemuArgs();
    /** QEMU's arguments for this job's machine with its files in `dir` (all but its name). */
    const vmArgs = async (dir: string) => [
      // tml's own variables win over a start script's of the same name.
      ...expandQemuArgs(template, {
        ...scriptVariables,
        job_id: this.job.job_id,
        job_workdir: this.dir,
        state_dir: this.options.stateDir,
        ...(topLayer === undefined ? {} : { main_disk_image: `${dir}/disk.qcow2` }),
      }),
      ...networkArgs(template, this.options.exposedPorts ?? []),
      "-display",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-pidfile",
      `${dir}/qemu.pid`,
      "-serial",
      `file:${dir}/console.log`,
      "-qmp",
      `unix:${dir}/qmp.sock,server=on,wait=off`,
      "-fw_cfg",
      `name=${PUPPET_FW_CFG_SECRET},file=${dir}/secret`,
      "-chardev",
      `socket,id=puppet,path=${dir}/puppet.sock,server=on,wait=off`,
      "-device",
      "virtio-serial",
      "-device",
      `virtserialport,chardev=puppet,name=${PUPPET_VIRTIO_PORT_NAME}`,
      ...await this.#bootArgs(plan, dir),
      ...(topLayer === undefined || templateAttachesDisk(template)
        ? []
        : ["-drive", `file=${dir}/disk.qcow2,format=qcow2,if=virtio`]),
    ];
    const snapshot = await this.#warmSnapshot(
      {
        qemu: programs.qemu,
        qemuImg: programs.qemuImg,
        prepare: (dir) => this.#prepareVmDir(plan, dir),
        args: vmArgs,
        topLayer,
        diskSizeBytes: this.options.workingDiskMaxBytes,
        bootTimeoutMs: this.options.bootTimeoutMs ?? 120_000,
      },
      signal,
    );
    stopped();
    await this.#prepareVmDir(plan, this.dir);
    if (topLayer !== undefined) {
      await createOverlay(
        programs.qemuImg,
        snapshot?.disk ?? topLayer,
        `${this.dir}/disk.qcow2`,
        this.options.workingDiskMaxBytes,
      );
    }
    const args = [
      "-name",
      `tml-${this.job.job_id}`,
      ...await vmArgs(this.dir),
      ...(snapshot === undefined ? [] : resumeArgs(snapshot)),
    ];
    const qemu = this.#spawn(programs.qemu, args, secret, puppetSocket, snapshot);
    if (snapshot !== undefined) {
      await withStartingQemu(
        `${this.dir}/qmp.sock`,
        qemu.status,
        (qmp) => resumeSnapshot(qmp, snapshot.dir),
      );
    }
    if ((this.options.exposedPorts ?? []).length > 0) {
      this.#forwards = await readHostForwards(`${this.dir}/qmp.sock`, qemu.status) ?? new Map();
    }
  }

  /**
   * The warm-start snapshot this job's VM resumes from, made now if needed; undefined when the
   * VM boots cold: warm start is off, or the machine depends on the job (its arguments name the
   * job, or a start script sets variables, e.g. the board's USB address, which a snapshot
   * cannot carry), or the image cannot be snapshotted.
   */
  async #warmSnapshot(template: TemplateVm, signal: AbortSignal): Promise<Snapshot | undefined> {
    const snapshots = this.snapshots;
    if (snapshots === undefined || this.options.startScript !== undefined) return undefined;
    const machine = await template.args(SNAPSHOT_PLACEHOLDER_DIR);
    if (machine.some((arg) => arg.includes(this.job.job_id))) {
      return undefined;
    }
    const key = await snapshots.keyOf(template);
    const snapshot = await snapshots.get(key, template, signal, () =>
      this.events.progress(
        "booting",
        "booting the image once to make its warm-start snapshot (once per image and machine)",
      ));
    if (snapshot !== undefined) {
      this.events.progress("booting", "resuming the VM from the image's warm-start snapshot");
    }
    return snapshot;
  }

  hostAddress(port: number): HostAddress | undefined {
    return this.#stopping === undefined ? this.#forwards.get(port) : undefined;
  }

  #bootPlan(manifest: ImageManifest): BootPlan {
    const imageId = this.job.image_id;
    const fileOf = this.siteCache.fileOf;
    try {
      const boot = kernelBootOf(manifest);
      const chain = imageKindOf(manifest) === "qemu" ? qemuLayerChain(manifest) : [];
      const disk = chain.length === 0 ? undefined : { chain };
      if (boot !== undefined) {
        let cmdline = boot.cmdline ?? "console=ttyS0";
        // A panicking guest must end QEMU (with -no-reboot), not hang.
        if (!/(^| )panic=/.test(cmdline)) cmdline += " panic=-1";
        return {
          kind: "kernel",
          kernel: boot.kernel.sha256,
          initrd: boot.initrd?.sha256,
          cmdline,
          disk,
          fileOf,
        };
      }
      if (disk === undefined) {
        throw new Error("it has neither kernel-boot attributes nor a qemu_layered_v0 disk");
      }
      return { kind: "uefi", disk, fileOf };
    } catch (error) {
      throw new HostStartError(
        `Cannot start a VM: image "${imageId}" is invalid: ${(error as Error).message}`,
        error,
      );
    }
  }

  /** Validates the layer chain and the disk's size; returns the top layer's file. */
  async #checkDisk(programs: QemuPrograms, plan: BootPlan): Promise<string> {
    const chain = plan.disk!.chain;
    await validateLayerChain(programs.qemuImg, chain, (layer) => plan.fileOf(layer.sha256));
    const top = chain[chain.length - 1];
    const virtualSize = top.virtualSize;
    const max = this.options.workingDiskMaxBytes;
    if (max !== undefined && virtualSize > max) {
      throw new HostStartError(
        `Cannot start a VM: image "${this.job.image_id}" has a ${virtualSize}-byte disk, more ` +
          `than this supervisor's working_disk_max_bytes (${max})`,
      );
    }
    return plan.fileOf(top.sha256);
  }

  /** The boot method's arguments for a VM whose files are in `dir`. */
  async #bootArgs(plan: BootPlan, dir: string): Promise<string[]> {
    if (plan.kind === "kernel") {
      return [
        "-kernel",
        plan.fileOf(plan.kernel),
        ...(plan.initrd === undefined ? [] : ["-initrd", plan.fileOf(plan.initrd)]),
        "-append",
        plan.cmdline,
      ];
    }
    const firmware = await requireOvmf();
    return [
      "-drive",
      `if=pflash,format=raw,unit=0,readonly=on,file=${firmware.code}`,
      "-drive",
      `if=pflash,format=raw,unit=1,file=${dir}/UEFI_VARS.fd`,
    ];
  }

  /** Files a VM in `dir` needs before QEMU starts, beside its disk and secret. */
  async #prepareVmDir(plan: BootPlan, dir: string): Promise<void> {
    // UEFI writes its variables (boot entries): each VM gets a fresh copy of the template.
    if (plan.kind === "uefi") {
      await Deno.copyFile((await requireOvmf()).vars, `${dir}/UEFI_VARS.fd`);
    }
  }

  #spawn(
    qemuBinary: string,
    args: string[],
    secret: string,
    puppetSocket: string,
    snapshot: Snapshot | undefined,
  ): Deno.ChildProcess {
    const channel = new PuppetChannel({
      secret,
      restored: snapshot !== undefined,
      job: {
        job_id: this.job.job_id,
        parameters: this.job.parameters,
        ssh_keys: this.job.ssh_keys,
        workload: this.job.workload,
      },
      events: {
        progress: (subState, message) => this.events.progress(subState, message),
        ready: () => {
          this.#ready = true;
          clearTimeout(this.#bootTimer);
          this.log.info("VM ready", { job_id: this.job.job_id });
          this.events.ready();
        },
        // The guest's puppet runs with --no-echo, so the workload's output reaches the job's log
        // once, from the channel (in order, before the result), beside the serial console.
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
    this.#console = new ConsoleFollower(
      `${this.dir}/console.log`,
      (bytes) => this.events.output(bytes),
    );

    this.events.progress("booting", "starting QEMU");
    let qemu: Deno.ChildProcess;
    try {
      qemu = new Deno.Command(qemuBinary, {
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
    this.#console.start();
    void this.#collectStderr(qemu.stderr);
    void this.#servePuppet(puppetSocket, channel, qemu.status);

    const timeoutMs = this.options.bootTimeoutMs ?? 120_000;
    this.#bootTimer = setTimeout(async () => {
      if (this.#ready || this.#stopping !== undefined) return;
      this.events.hostLost({
        kind: "unresponsive",
        message: `the puppet did not report ready within ${timeoutMs} ms; console ends with: ` +
          await this.#consoleTail(),
      });
    }, timeoutMs);
    void qemu.status.then(async (status) => {
      clearTimeout(this.#bootTimer);
      channel.close();
      // Let the stderr reader see QEMU's last words.
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (this.#stopping !== undefined) return;
      await this.#console?.stop();
      const tail = await this.#consoleTail();
      if (!this.#ready) {
        // A snapshot QEMU cannot load would fail every job: the next job makes a new one.
        if (snapshot !== undefined && !status.success) await this.snapshots?.discard(snapshot.key);
        this.events.hostLost({
          kind: "crashed",
          message: `QEMU ${describeStatus(status)} before the puppet was ready: ${
            this.#stderr.trim() || `console ends with: ${tail}`
          }`,
        });
        return;
      }
      const panicked = (await this.#consoleTail(PANIC_WINDOW_BYTES)).includes("Kernel panic");
      this.events.hostLost({
        kind: panicked || !status.success ? "crashed" : "exited",
        message: panicked
          ? "the guest kernel panicked"
          : `QEMU ${describeStatus(status)} (the guest powered off or died)`,
      });
    });
    return qemu;
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

  async #consoleTail(bytes = CONSOLE_TAIL_BYTES): Promise<string> {
    const text = await Deno.readTextFile(`${this.dir}/console.log`).catch(() => "");
    return text.slice(-bytes).trim();
  }

  /** Ends the VM and removes the job directory; later calls wait for the first. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#bootTimer);
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
        // A guest that is not ready runs no workload to end gently.
        if (this.#ready) {
          // The puppet ends its workload and exits; the guest's init then powers off.
          await this.#channel?.shutdown(reason);
          if (!await exitedWithin(graceMs)) await this.#qmp("system_powerdown");
        }
        if (!await exitedWithin(this.#ready ? graceMs : 0)) {
          await this.#qmp("quit");
          if (!await exitedWithin(2_000)) await killProcesses([qemu.pid]);
        }
        await qemu.status;
      }
      this.#channel?.close();
      await this.#console?.stop();
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

function blobsOf(plan: BootPlan): string[] {
  const disk = plan.disk?.chain.map((layer) => layer.sha256) ?? [];
  if (plan.kind === "uefi") return disk;
  return [plan.kernel, ...(plan.initrd === undefined ? [] : [plan.initrd]), ...disk];
}

function describeStatus(status: Deno.CommandStatus): string {
  return status.signal !== null
    ? `was killed by ${status.signal}`
    : `exited with code ${status.code}`;
}
