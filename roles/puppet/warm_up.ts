/**
 * The puppet's warm-up: one rehearsal job run end to end against a scripted supervisor on a
 * loopback socket, in a throwaway directory (job files, a secret parameter, an SSH key, a
 * workload with output, its result, shutdown). The puppet runs it at the first `restored` it
 * gets, which is its template VM being readied for a warm-start snapshot (`puppet.ts`).
 *
 * Why: in a VM under software emulation, the JavaScript engine compiling a code path the first
 * time it runs is what makes a job's first steps slow (measured on a resumed VM: handling
 * `restored` cold took ~560 ms, warmed 2 ms; a whole job 1.6 s of QEMU CPU before the warm-up,
 * 1.1 s after). The snapshot is saved after it, so every VM resumed from it runs the job's path
 * compiled. A cold boot does not run it: there it would only move the same compiling earlier
 * and add the rehearsal's own work. A failed warm-up is logged and the puppet goes on.
 */
import type { Logger } from "../../lib/log.ts";
import { createLogger } from "../../lib/log.ts";
import { FramedChannel } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  PuppetMessage,
  type SupervisorToPuppet,
} from "../../lib/protocol/puppet.ts";
import { Puppet } from "./puppet.ts";

/** A warm-up that takes longer than this is abandoned (the puppet then starts anyway). */
const WARM_UP_TIMEOUT_MS = 60_000;
const REHEARSAL_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRtbC13YXJtLXVwLXJlaGVhcnNhbC1rZXk= warm-up";

/**
 * Runs the rehearsal in a new directory under `tmpDir` (default: the system's), removed after;
 * never throws.
 */
export async function warmUp(log: Logger, tmpDir?: string): Promise<void> {
  const started = performance.now();
  let dir: string | undefined;
  let listener: Deno.TcpListener | undefined;
  let puppet: Puppet | undefined;
  let running: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    dir = await Deno.makeTempDir({ dir: tmpDir, prefix: "tml-puppet-warm-up-" });
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    puppet = new Puppet({
      channel: { kind: "tcp", hostname: "127.0.0.1", port: listener.addr.port },
      readSecret: () => Promise.resolve("warm-up"),
      onRestored: () => {},
      root: `${dir}/root`,
      authorizedKeys: `${dir}/authorized_keys`,
      workdir: `${dir}/work`,
      controlSocket: `${dir}/control.sock`,
      reconnectTimeoutMs: 5_000,
      stopGraceMs: 1_000,
      echoWorkloadOutput: false,
      log: createLogger("puppet-warm-up", "error"),
    });
    const rehearsal = rehearse(listener);
    running = puppet.run();
    // Both are awaited below; a failure of either must not go unheard meanwhile.
    rehearsal.catch(() => {});
    running.catch(() => {});
    await Promise.race([
      Promise.all([rehearsal, running]),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), WARM_UP_TIMEOUT_MS);
      }),
    ]);
    log.debug("warmed up", { ms: Math.round(performance.now() - started) });
  } catch (error) {
    log.warn("the warm-up failed; going on without it", { error: (error as Error).message });
  } finally {
    clearTimeout(timer);
    puppet?.stop();
    await running?.catch(() => {});
    listener?.close();
    if (dir !== undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The supervisor's side of the rehearsal job, on the puppet's first connection. */
async function rehearse(listener: Deno.TcpListener): Promise<void> {
  const connection = await listener.accept();
  const supervisor = new FramedChannel<typeof PuppetMessage, SupervisorToPuppet>(
    connection,
    PuppetMessage,
    { maxBytes: MAX_PUPPET_FRAME_BYTES },
  );
  try {
    if ((await supervisor.receive())?.type !== "auth") throw new Error("the puppet sent no auth");
    await supervisor.send({
      type: "auth_ok",
      job: {
        job_id: crypto.randomUUID(),
        parameters: {
          greeting: { value: "warm-up", secret: false },
          token: { value: "warm-up", secret: true },
        },
        ssh_keys: [REHEARSAL_KEY],
        workload: 'echo "$(cat "$TML_PARAMETERS_DIR/greeting")"; echo warm-up >&2',
      },
      heartbeat_interval_ms: 60_000,
      output_offsets: { stdout: 0, stderr: 0 },
    });
    while (true) {
      const message = await supervisor.receive();
      if (message === undefined) throw new Error("the puppet closed the rehearsal's channel");
      if (message.type !== "workload_finished") continue;
      if (message.outcome !== "success") {
        throw new Error(`the rehearsal's workload failed: ${message.message ?? message.outcome}`);
      }
      break;
    }
    await supervisor.send({ type: "shutdown", reason: "warm-up over" });
  } finally {
    supervisor.close();
  }
}
