/**
 * Warm start for `tml supervisor qemu`: instead of booting every job's VM (kernel, init, and
 * starting the puppet's runtime: ~7 CPU-seconds under software emulation), the driver boots a
 * VM once per image and machine, with a throwaway secret, until its puppet has sent `auth`;
 * then it saves the paused VM and its disk overlay. Each job's VM is a new QEMU process that
 * loads that state with the job's own secret (fw_cfg contents are not part of the state), a
 * fresh overlay on the template's disk, and its own sockets; the resumed puppet is told
 * `restored` and authenticates anew (`lib/protocol/puppet.ts`). Every job still gets its own
 * VM, disk and secret.
 *
 * The guest's RAM is not in the saved state: the template's RAM is a file it maps shared, left
 * out of the migration stream (`x-ignore-shared`), and each job's QEMU maps that file privately
 * (copy on write). Loading is then ~0.5 MB of device state instead of the ~200 MB of RAM the
 * guest used, and VMs resumed at once share the pages they only read (measured: saving 54 ms
 * instead of seconds, loading ~0.2 CPU-s instead of 0.35-0.7).
 *
 *   <root>/<key>/ram              the guest's RAM, mapped by every job's QEMU, never written
 *   <root>/<key>/state            the devices' state, loaded by every job's QEMU
 *   <root>/<key>/disk.qcow2       the template's overlay (what its guest wrote while booting),
 *                                 the read-only backing file of each job's overlay
 *   <root>/<key>.new-<n>/         a template VM at work; renamed to <key> once complete, so a
 *                                 snapshot directory is always whole
 *
 * The key hashes QEMU's binary and every argument that shapes the machine, so a change of
 * image, machine arguments or QEMU makes a new snapshot. Only the newest few are kept. Machines
 * whose `qemu_args` set up memory themselves (a backend, `-mem-path`, NUMA, hotplug slots) or
 * give no `-m` boot cold: the RAM could not be put in a file of a known size.
 */
import { createHash } from "node:crypto";
import type { Logger } from "../../lib/log.ts";
import { FramedChannel } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  PuppetMessage,
  puppetSecretMatches,
} from "../../lib/protocol/puppet.ts";
import { RESTORABLE_PUPPET_VERSION } from "../../lib/protocol/version.ts";
import { generatePuppetSecret, restoredMessage } from "./puppet_channel.ts";
import { killProcesses } from "./process_marks.ts";
import { createOverlay } from "./qemu_disk.ts";
import { runningQemuOf } from "./qemu_pidfile.ts";
import { QmpClient } from "./qemu_qmp.ts";
import { HostStartError } from "./host_driver.ts";

/** A template VM to snapshot: how to start it, with all its files in a directory. */
export interface TemplateVm {
  qemu: string;
  qemuImg: string;
  /** Puts files the VM needs into `dir` (beside its disk and secret) before QEMU starts. */
  prepare(dir: string): Promise<void>;
  /** QEMU's arguments for a VM whose files (sockets, console, secret, disk) are in `dir`. */
  args(dir: string): Promise<string[]>;
  /** The image's top disk layer, which the template's overlay goes on; none: no disk. */
  topLayer?: string;
  diskSizeBytes?: number;
  /** How long the template's puppet has to send `auth`. */
  bootTimeoutMs: number;
}

/** A complete snapshot: its directory, and the disk each job's overlay is backed by. */
export interface Snapshot {
  key: string;
  dir: string;
  /** Size of the guest's RAM (its file's size). */
  ramBytes: number;
  /** Present when the VM has a disk. */
  disk?: string;
}

/** The directory a template's arguments are keyed with: the same for every job. */
export const SNAPSHOT_PLACEHOLDER_DIR = "/@VM_DIR@";

/** How many snapshots are kept (each is the template's used memory, ~100-200 MB). */
const KEEP_SNAPSHOTS = 3;
const BUILDING = ".new-";
/**
 * `restored`/`auth` round trips with the template before it is saved: the puppet's code for
 * them is then compiled in the snapshot, not on a resumed VM's cold translation cache.
 */
const WARM_UP_ROUNDS = 3;
/** Part of every key: snapshots of an earlier layout are never loaded. */
const LAYOUT = "shared-ram-1";
/** The QEMU object id of the guest's RAM, the same in the template and every job. */
const RAM_ID = "tml-ram";
const IGNORE_SHARED = { capabilities: [{ capability: "x-ignore-shared", state: true }] };

/** Arguments that put the guest's RAM in `file`: written by the template, copied on write by jobs. */
function ramArgs(file: string, bytes: number, share: boolean): string[] {
  return [
    "-object",
    // A comma in an option's value is written twice.
    `memory-backend-file,id=${RAM_ID},size=${bytes},mem-path=${file.replaceAll(",", ",,")},share=${
      share ? "on" : "off"
    }`,
    "-machine",
    `memory-backend=${RAM_ID}`,
  ];
}

/** The snapshot directory a job's QEMU arguments (`resumeArgs`) resume from, if any. */
export function resumedSnapshotDir(args: string[]): string | undefined {
  if (!args.includes("-incoming")) return undefined;
  for (const arg of args) {
    if (!arg.startsWith(`memory-backend-file,id=${RAM_ID},`)) continue;
    // The path ends at the first single comma (a doubled one is a comma of the path).
    const path = /,mem-path=((?:[^,]|,,)*)\/ram(?:,(?!,)|$)/.exec(arg)?.[1];
    return path?.replaceAll(",,", ",");
  }
  return undefined;
}

/** Arguments that make a job's QEMU resume `snapshot` (then `resumeSnapshot` over QMP). */
export function resumeArgs(snapshot: Snapshot): string[] {
  return [...ramArgs(`${snapshot.dir}/ram`, snapshot.ramBytes, false), "-incoming", "defer"];
}

/**
 * Loads the snapshot in `dir` into a QEMU started with `resumeArgs` and runs the VM. The
 * template was paused when it was saved, so its state loads paused; a `cont` before the load is
 * over would be forgotten.
 */
export async function resumeSnapshot(qmp: QmpClient, dir: string): Promise<void> {
  await qmp.execute("migrate-set-capabilities", IGNORE_SHARED);
  await qmp.execute("migrate-incoming", { uri: `exec:cat ${shellQuote(`${dir}/state`)}` });
  while (true) {
    const { status } = await qmp.execute("query-status") as { status: string };
    if (status === "paused") break;
    if (status !== "inmigrate") {
      throw new HostStartError(`Cannot resume the VM from its snapshot: QEMU is "${status}"`);
    }
    await delay(5);
  }
  await qmp.execute("cont");
}

/**
 * The guest RAM size the machine arguments give (`-m 512`, `-m 2G`, `-m size=1G`; the last
 * wins), or why its RAM cannot be put in a file of known size.
 */
export function guestRamBytes(args: string[]): number | string {
  let bytes: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const [option, value = ""] = [args[i].replace(/^--/, "-"), args[i + 1]];
    const ownMemory = option === "-mem-path" || option === "-numa" ||
      (option === "-object" && value.startsWith("memory-backend")) ||
      (option === "-machine" && value.includes("memory-backend="));
    if (ownMemory) return `qemu_args set up the guest's memory themselves (${option} ${value})`;
    if (option !== "-m") continue;
    // As QEMU reads it: MiB without a suffix, one letter otherwise (B for bytes; "2GB" is wrong).
    const match = /^(?:size=)?(\d+(?:\.\d+)?)([BKMGT]?)$/i.exec(value);
    if (match === null) return `qemu_args give "-m ${value}", not a plain size`;
    const unit = { "": 2 ** 20, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[
      match[2].toUpperCase() as "" | "B" | "K" | "M" | "G" | "T"
    ];
    bytes = Math.round(Number(match[1]) * unit);
  }
  return bytes ?? "qemu_args give no -m (the guest's RAM size)";
}

export class QemuSnapshots {
  readonly #building = new Map<string, Promise<Snapshot | undefined>>();
  /** Keys whose template could not be snapshotted, with why: those jobs boot cold. */
  readonly #refused = new Map<string, string>();

  constructor(private readonly root: string, private readonly log: Logger) {}

  /**
   * The key of the machine that `template` starts: QEMU's binary (path, size, time) and its
   * arguments for a placeholder directory.
   */
  async keyOf(template: TemplateVm): Promise<string> {
    const binary = await Deno.stat(template.qemu);
    const identity = JSON.stringify({
      qemu: [template.qemu, binary.size, binary.mtime?.getTime()],
      args: await template.args(SNAPSHOT_PLACEHOLDER_DIR),
      disk: template.diskSizeBytes ?? null,
      layout: LAYOUT,
    });
    return createHash("sha256").update(identity).digest("hex").slice(0, 16);
  }

  /**
   * The snapshot for `key`, made from `template` when there is none yet (one build per key at a
   * time; `onBuild` is called when this call starts one). Undefined when the template cannot be snapshotted (its puppet predates warm start,
   * it did not come up in time, QEMU refused): the caller boots cold, and so do later jobs of
   * the same key. Throws only when `signal` aborts the build.
   */
  async get(
    key: string,
    template: TemplateVm,
    signal: AbortSignal,
    onBuild: () => void,
  ): Promise<Snapshot | undefined> {
    if (this.#refused.has(key)) return undefined;
    const existing = await this.#complete(key);
    if (existing !== undefined) return existing;
    let building = this.#building.get(key);
    if (building === undefined) {
      onBuild();
      building = this.#build(key, template, signal).finally(() => this.#building.delete(key));
      this.#building.set(key, building);
    }
    return await building;
  }

  /** Drops a snapshot that failed to resume, so the next job of its key makes a new one. */
  async discard(key: string): Promise<void> {
    this.log.warn("discarding a warm-start snapshot that failed to resume", { key });
    await Deno.remove(`${this.root}/${key}`, { recursive: true }).catch(() => {});
  }

  /** Ends the template VMs a killed supervisor left, and removes their directories. */
  async removeUnfinished(): Promise<void> {
    for (const dir of await this.#entries((name) => name.includes(BUILDING))) {
      const pid = await runningQemuOf(dir);
      if (pid !== undefined) await killProcesses([pid]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  async #complete(key: string): Promise<Snapshot | undefined> {
    const dir = `${this.root}/${key}`;
    let ramBytes: number;
    try {
      await Deno.stat(`${dir}/state`);
      ramBytes = (await Deno.stat(`${dir}/ram`)).size;
    } catch {
      return undefined;
    }
    const now = new Date();
    // Its time says when it was last used, for pruning.
    await Deno.utime(dir, now, now).catch(() => {});
    const disk = await Deno.stat(`${dir}/disk.qcow2`).then(() => `${dir}/disk.qcow2`, () => {
      return undefined;
    });
    return { key, dir, ramBytes, disk };
  }

  async #build(key: string, template: TemplateVm, signal: AbortSignal) {
    // Short: the puppet's socket in it must fit a unix socket path, as a job directory's does.
    const dir = `${this.root}/${key}${BUILDING}${crypto.randomUUID().slice(0, 6)}`;
    const started = performance.now();
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      const refusal = await makeSnapshot(dir, template, signal);
      if (refusal !== undefined) {
        this.log.warn("cannot make a warm-start snapshot: jobs of this image boot cold", {
          key,
          reason: refusal,
        });
        this.#refused.set(key, refusal);
        return undefined;
      }
      for (const file of ["secret", "console.log", "qmp.sock", "puppet.sock", "qemu.pid"]) {
        await Deno.remove(`${dir}/${file}`).catch(() => {});
      }
      // On disk before the directory is renamed complete: a crash must not leave a whole-looking
      // snapshot whose memory is partly lost.
      for (const file of ["ram", "state", "disk.qcow2", "."]) await syncFile(`${dir}/${file}`);
      try {
        await Deno.rename(dir, `${this.root}/${key}`);
      } catch (error) {
        // Another supervisor sharing the directory made the same snapshot first: use that.
        const theirs = await this.#complete(key);
        if (theirs === undefined) throw error;
        return theirs;
      }
      this.log.info("made a warm-start snapshot", {
        key,
        ms: Math.round(performance.now() - started),
        state_bytes: (await Deno.stat(`${this.root}/${key}/state`)).size,
      });
      await this.#prune(key);
      return await this.#complete(key);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /** Keeps the newest snapshots (by last use), always including `keep`. */
  async #prune(keep: string): Promise<void> {
    const dirs = await this.#entries((name) => !name.includes(BUILDING) && name !== keep);
    const used = await Promise.all(
      dirs.map(async (dir) => ({ dir, at: (await Deno.stat(dir)).mtime?.getTime() ?? 0 })),
    );
    used.sort((a, b) => b.at - a.at);
    for (const { dir } of used.slice(KEEP_SNAPSHOTS - 1)) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  async #entries(match: (name: string) => boolean): Promise<string[]> {
    const dirs: string[] = [];
    try {
      for await (const entry of Deno.readDir(this.root)) {
        if (entry.isDirectory && match(entry.name)) dirs.push(`${this.root}/${entry.name}`);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return dirs;
  }
}

/**
 * Boots the template in `dir` until its puppet sends `auth` with the template's secret, then
 * saves the paused VM (`dir/ram`, `dir/state`) and quits. Returns why it could not, or undefined.
 */
async function makeSnapshot(
  dir: string,
  template: TemplateVm,
  signal: AbortSignal,
): Promise<string | undefined> {
  const secret = generatePuppetSecret();
  await Deno.writeTextFile(`${dir}/secret`, secret, { mode: 0o600 });
  if (template.topLayer !== undefined) {
    await createOverlay(
      template.qemuImg,
      template.topLayer,
      `${dir}/disk.qcow2`,
      template.diskSizeBytes,
    );
  }
  const args = await template.args(dir);
  const ramBytes = guestRamBytes(args);
  if (typeof ramBytes === "string") return ramBytes;
  await template.prepare(dir);
  const qemu = new Deno.Command(template.qemu, {
    args: [...args, ...ramArgs(`${dir}/ram`, ramBytes, true)],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
  const stderr = new Response(qemu.stderr).text();
  let exited = false;
  void qemu.status.then(() => (exited = true));
  const kill = () => void killProcesses([qemu.pid]);
  signal.addEventListener("abort", kill);
  let puppet: Deno.UnixConn | undefined;
  try {
    let deadline = Date.now() + template.bootTimeoutMs;
    while (puppet === undefined) {
      if (exited) return `QEMU exited while booting: ${(await stderr).trim()}`;
      if (signal.aborted) throw new Error("the job was stopped");
      if (Date.now() > deadline) return "QEMU did not open the puppet's socket";
      puppet = await Deno.connect({ transport: "unix", path: `${dir}/puppet.sock` })
        .catch(() => delay(20).then(() => undefined));
    }
    const channel = new FramedChannel(puppet, PuppetMessage, { maxBytes: MAX_PUPPET_FRAME_BYTES });
    /** The puppet's next message; undefined when QEMU exits or the boot's deadline passes. */
    const receive = () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        channel.receive(),
        qemu.status.then(() => undefined),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
        }),
      ]).finally(() => clearTimeout(timer));
    };
    const first = await receive();
    if (signal.aborted) throw new Error("the job was stopped");
    if (first?.type !== "auth" || !puppetSecretMatches(first.secret, secret)) {
      return exited
        ? `QEMU exited before the puppet authenticated: ${(await stderr).trim()}`
        : `the puppet did not authenticate within ${template.bootTimeoutMs} ms`;
    }
    if (first.protocol_version < RESTORABLE_PUPPET_VERSION) {
      return `the image's puppet speaks protocol version ${first.protocol_version}; warm start ` +
        `needs ${RESTORABLE_PUPPET_VERSION} (upgrade tml in the image)`;
    }
    // The first round runs the puppet's warm-up (a rehearsal job): a budget of its own.
    deadline = Date.now() + template.bootTimeoutMs;
    for (let round = 0; round < WARM_UP_ROUNDS; round++) {
      await channel.send(restoredMessage());
      const again = await receive();
      if (signal.aborted) throw new Error("the job was stopped");
      if (again?.type !== "auth") {
        return exited
          ? `QEMU exited while the puppet warmed up: ${(await stderr).trim()}`
          : "the puppet did not authenticate again after `restored`";
      }
    }
    // The connection stays open until QEMU quits: the saved state has the puppet's port
    // connected, as each job's supervisor will be.
    const qmp = await QmpClient.connect(`${dir}/qmp.sock`, 5_000);
    try {
      await qmp.execute("stop");
      await qmp.execute("migrate-set-capabilities", IGNORE_SHARED);
      await qmp.execute("migrate", { uri: `exec:cat > ${shellQuote(`${dir}/state`)}` });
      while (true) {
        const { status, "error-desc": error } = await qmp.execute("query-migrate") as {
          status?: string;
          "error-desc"?: string;
        };
        if (status === "completed") break;
        if (status === "failed" || status === "cancelled") {
          return `QEMU could not save the VM: ${error ?? status}`;
        }
        await delay(10);
      }
      await qmp.execute("quit").catch(() => {});
    } finally {
      qmp.close();
    }
    await qemu.status;
    return undefined;
  } finally {
    signal.removeEventListener("abort", kill);
    puppet?.close();
    if (!exited) await killProcesses([qemu.pid]);
    await qemu.status;
    await stderr.catch(() => "");
  }
}

/** fsync of a file or directory that may be absent (a VM without a disk has no overlay). */
async function syncFile(path: string): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

/** Quotes a path for `/bin/sh`, which runs QEMU's `exec:` migration commands. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
