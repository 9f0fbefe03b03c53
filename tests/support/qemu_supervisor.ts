/**
 * `tml supervisor qemu` for end-to-end tests: the test guest pushed into a running image store
 * with `tml image push`, a supervisor process that boots its VMs from there, and the QEMU
 * processes a test's VMs run as (to assert none outlives its job).
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import type { TestGuest } from "../../images/test_guest/build.ts";
import type { RunningStore } from "../image_store/store_harness.ts";
import { runTml, TmlProcess } from "./tml_process.ts";

/** Pushes the guest's image into the store, as a site's operator would. */
export async function pushImage(guest: TestGuest, store: RunningStore): Promise<void> {
  const pushed = await runTml([
    "image",
    "push",
    guest.storeDir,
    "--store",
    store.url,
    "--token-file",
    store.tokenFile,
  ]);
  assertEquals(pushed.code, 0, pushed.stderr);
  assertEquals(JSON.parse(pushed.stdout).image_id, guest.imageId);
}

export interface QemuSupervisorOptions {
  switchboard: string;
  imageStore: string;
  supervisorId: string;
  /** The supervisor's token, written to `<dir>/supervisor.token`. */
  token: string;
  /** Holds the token file and the state directory (`<dir>/supervisor`). */
  dir: string;
  /** More flags, e.g. `--rendezvous URL`. */
  args?: string[];
}

/** Starts `tml supervisor qemu` (2 min to boot, 1 s heartbeats) and waits until it is connected. */
export async function startQemuSupervisor(options: QemuSupervisorOptions): Promise<TmlProcess> {
  const tokenFile = `${options.dir}/supervisor.token`;
  await Deno.mkdir(options.dir, { recursive: true });
  await Deno.writeTextFile(tokenFile, options.token, { mode: 0o600 });
  const supervisor = TmlProcess.start([
    "supervisor",
    "qemu",
    "--switchboard",
    options.switchboard,
    "--image-store",
    options.imageStore,
    "--id",
    options.supervisorId,
    "--token-file",
    tokenFile,
    "--state-dir",
    `${options.dir}/supervisor`,
    "--ready-timeout",
    "2m",
    "--heartbeat-interval",
    "1s",
    ...(options.args ?? []),
  ]);
  await supervisor.waitFor(/connected to the switchboard/, 60_000);
  return supervisor;
}

/** QEMU processes whose command line names `dir` (a test's directory). */
export async function qemuProcessesOf(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    if (cmdline.split("\0")[0].includes("qemu-system") && cmdline.includes(dir)) {
      pids.push(Number(entry.name));
    }
  }
  return pids;
}
