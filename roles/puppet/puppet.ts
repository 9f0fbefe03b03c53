/**
 * `tml puppet`: the agent inside a job's host. It connects to its supervisor, authenticates
 * with the per-job secret, writes the job's files, reports ready, runs the job's workload (if
 * any), streams its output and reports its result, keeps a heartbeat, and relays `tml puppet
 * finish|terminate` from its control socket.
 *
 * It outlives a lost connection and its own restart: it connects again, authenticates with the
 * same secret, and repeats what the supervisor may have missed (`ready`, output from the
 * offsets the supervisor names, the result). State that must survive a restart lives in
 * `puppet_state.ts`.
 *
 *   connect ─> auth ─> auth_ok ─> files (once) ─> ready ─> [workload] ─> result ─┐
 *      ^                                                                          │
 *      └─────── channel lost or supervisor silent (reconnect until a deadline) ──┤
 *                                                            shutdown / SIGTERM ─┴─> stop workload, exit
 */
import { Buffer } from "node:buffer";
import type { Logger } from "../../lib/log.ts";
import { FramedChannel } from "../../lib/protocol/framed_json.ts";
import {
  type AuthOk,
  MAX_PUPPET_FRAME_BYTES,
  type PuppetControlReply,
  type PuppetControlRequest,
  type PuppetJob,
  type PuppetMessage,
  type Restored,
  SupervisorToPuppet,
  type WorkloadStream,
} from "../../lib/protocol/puppet.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { type ChannelSpec, formatChannelSpec, openChannel } from "./channel_locator.ts";
import { type ControlSocket, serveControlSocket } from "./control_socket.ts";
import { PuppetError } from "./errors.ts";
import { type Owner, writeJobFiles } from "./job_files.ts";
import { OutputTail } from "./output_tail.ts";
import { PuppetState, type WorkloadResult } from "./puppet_state.ts";
import { Workload } from "./workload.ts";

export interface PuppetOptions {
  channel: ChannelSpec;
  /** Reads the per-job secret; called for every authentication (a resumed VM has a new one). */
  readSecret: () => Promise<string>;
  /** Brings the host up to date after a resume from a snapshot (`resume.ts`). */
  onRestored: (restored: Restored) => void;
  /**
   * Runs once, at the first `restored`: that is a template VM being readied for a warm-start
   * snapshot, or else a VM resumed from one whose template already ran it (`warm_up.ts`).
   */
  warmUp?: () => Promise<void>;
  root: string;
  /** Where the job's SSH keys go. */
  authorizedKeys: string;
  /** Owner of secret files and the keys (the `tml` user when the puppet runs as root). */
  owner?: Owner;
  /** The workload's working directory. */
  workdir: string;
  /** Where `tml puppet finish|terminate` reach this puppet. */
  controlSocket: string;
  /** How long to keep trying to reach the supervisor before giving up. */
  reconnectTimeoutMs: number;
  /** How long the workload gets between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  /** Whether the workload's output is also copied to this process's stdout and stderr. */
  echoWorkloadOutput: boolean;
  log: Logger;
}

type Channel = FramedChannel<typeof SupervisorToPuppet, PuppetMessage>;

/** How often output files are polled for new bytes. */
const OUTPUT_POLL_MS = 200;
/** Heartbeat intervals of silence after which the supervisor counts as gone. */
const SILENT_INTERVALS = 3;

export class Puppet {
  #job?: PuppetJob;
  #state?: PuppetState;
  #workload?: Workload;
  #result?: WorkloadResult;
  #terminateRequested = false;
  #control?: ControlSocket;
  /** The authenticated channel, where results and output go. */
  #channel?: Channel;
  /** The connection of the session in progress, authenticated or not, so `stop()` can end it. */
  #connection?: Channel;
  #tails?: Record<WorkloadStream, OutputTail>;
  /** Bytes of each stream already echoed to this process's stdout/stderr. */
  #echoed: Record<WorkloadStream, number> = { stdout: 0, stderr: 0 };
  #stopping = false;
  #warmedUp = false;

  constructor(private readonly options: PuppetOptions) {}

  /** Runs until the supervisor says shutdown (or `stop()`); throws when it cannot go on. */
  async run(): Promise<void> {
    try {
      while (!this.#stopping) {
        const channel = await this.#connect();
        if (channel === undefined) break;
        const end = await this.#session(channel);
        if (end === "shutdown") break;
        this.options.log.warn("lost the channel to the supervisor, reconnecting");
      }
    } finally {
      await this.#workload?.stop(this.options.stopGraceMs);
      this.#control?.close();
    }
  }

  /** Ends the puppet as if the supervisor had said shutdown (SIGTERM from the host's init). */
  stop(): void {
    this.#stopping = true;
    this.#connection?.close();
  }

  async #connect(): Promise<Channel | undefined> {
    const deadline = performance.now() + this.options.reconnectTimeoutMs;
    let backoff = 100;
    while (!this.#stopping) {
      try {
        const stream = await openChannel(this.options.channel);
        return new FramedChannel(stream, SupervisorToPuppet, {
          maxBytes: MAX_PUPPET_FRAME_BYTES,
          onInvalid: (detail) => this.options.log.warn("ignoring an invalid frame", { detail }),
        });
      } catch (error) {
        if (performance.now() + backoff > deadline) {
          throw new PuppetError(
            "supervisor_unreachable",
            `Cannot reach the supervisor at "${formatChannelSpec(this.options.channel)}": ${
              (error as Error).message
            }`,
            { cause: error },
          );
        }
        await delay(backoff);
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
    return undefined;
  }

  /** One authenticated connection's life: "shutdown" when asked to end, else "lost". */
  async #session(channel: Channel): Promise<"shutdown" | "lost"> {
    // Monotonic: a resumed VM's clock is set forward (`restored`) while this session runs.
    let lastHeard = performance.now();
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    let poller: ReturnType<typeof setInterval> | undefined;
    this.#connection = channel;
    try {
      if (this.#stopping) return "shutdown";
      let answer = await this.#authenticate(channel);
      // Resumed from a warm-start snapshot: the clock and the secret are the template's.
      while (answer?.type === "restored") {
        try {
          this.options.onRestored(answer);
          this.options.log.info("resumed from a snapshot: clock set, random generator reseeded");
        } catch (error) {
          this.options.log.warn("cannot bring the host up to date after a resume", {
            error: (error as Error).message,
          });
        }
        if (!this.#warmedUp) {
          this.#warmedUp = true;
          await this.options.warmUp?.();
        }
        answer = await this.#authenticate(channel);
      }
      if (answer?.type === "auth_failed") {
        throw new PuppetError(
          "auth_failed",
          `Cannot authenticate to the supervisor: ${answer.message}`,
        );
      }
      if (answer?.type !== "auth_ok") return this.#stopping ? "shutdown" : "lost";
      await this.#prepare(answer.job);

      this.#channel = channel;
      // The silence limit counts from now: writing the job files is not the supervisor's silence,
      // nor is the time a warm-start snapshot sat on disk between `auth` and `restored`.
      lastHeard = performance.now();
      heartbeat = setInterval(() => {
        if (performance.now() - lastHeard > SILENT_INTERVALS * answer.heartbeat_interval_ms) {
          this.options.log.warn("the supervisor stopped answering heartbeats");
          channel.close();
          return;
        }
        channel.send({ type: "heartbeat" }).catch(() => {});
      }, answer.heartbeat_interval_ms);
      this.#tails = this.#makeTails(answer);
      await channel.send({ type: "ready" });
      this.options.log.info("ready", { job_id: answer.job.job_id });
      await this.#flush();
      await this.#startWorkload();
      poller = setInterval(() => void this.#pumpOutput().catch(() => {}), OUTPUT_POLL_MS);

      while (true) {
        const message = await channel.receive();
        lastHeard = performance.now();
        if (message === undefined) return this.#stopping ? "shutdown" : "lost";
        if (message.type === "shutdown") {
          this.options.log.info("the supervisor asked to shut down", { reason: message.reason });
          return "shutdown";
        }
      }
    } catch (error) {
      if (error instanceof PuppetError) throw error;
      // A send on a broken connection: the channel is gone.
      return this.#stopping ? "shutdown" : "lost";
    } finally {
      clearInterval(heartbeat);
      clearInterval(poller);
      if (this.#channel === channel) this.#channel = undefined;
      if (this.#connection === channel) this.#connection = undefined;
      channel.close();
    }
  }

  /** Sends `auth` with the secret as it is now (a resumed VM has a new one) and awaits the answer. */
  async #authenticate(channel: Channel) {
    await channel.send({
      type: "auth",
      protocol_version: PROTOCOL_VERSION,
      secret: await this.options.readSecret(),
    });
    return await channel.receive();
  }

  /** Once per process: state, job files and the control socket for the job. */
  async #prepare(job: PuppetJob): Promise<void> {
    if (this.#job !== undefined) {
      if (this.#job.job_id !== job.job_id) {
        throw new PuppetError(
          "job_changed",
          `Cannot continue: the supervisor now names job "${job.job_id}", not "${this.#job.job_id}"`,
        );
      }
      return;
    }
    const { root } = this.options;
    try {
      await Deno.mkdir(root, { recursive: true });
      this.#state = await PuppetState.open(root, job.job_id);
      await writeJobFiles(job, {
        root,
        authorizedKeys: this.options.authorizedKeys,
        owner: this.options.owner,
      });
    } catch (error) {
      throw new PuppetError(
        "job_files",
        `Cannot write the job's files under "${root}": ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.options.log.info("job files written", {
      job_id: job.job_id,
      parameters: Object.keys(job.parameters).length,
      ssh_keys: job.ssh_keys.length,
    });
    this.#result = await this.#state.readResult();
    this.#control = serveControlSocket(
      this.options.controlSocket,
      (request) => this.#handleControl(request),
    );
    this.#job = job;
  }

  /**
   * Adopts the workload an earlier run of the puppet started (even one that already reported
   * its result: it must still be stopped at the end), or else starts the job's workload unless
   * a result is already known.
   */
  async #startWorkload(): Promise<void> {
    const job = this.#job!;
    const state = this.#state!;
    if (this.#workload !== undefined) return;
    this.#workload = await Workload.adopt(state, job.job_id);
    if (this.#workload !== undefined) {
      this.options.log.info("watching the workload an earlier puppet started", {
        pid: this.#workload.pid,
      });
    } else if (job.workload !== null && this.#result === undefined) {
      try {
        this.#workload = await Workload.start(job.workload, {
          state,
          jobId: job.job_id,
          workdir: this.options.workdir,
          env: {
            TML_PARAMETERS_DIR: `${this.options.root}/parameters`,
            TML_PUPPET_ROOT: this.options.root,
            TML_PUPPET_CONTROL_SOCKET: this.options.controlSocket,
            // An installed `tml` comes first; the shim serves hosts without one.
            PATH: `${Deno.env.get("PATH") ?? "/usr/bin:/bin"}:${await state.writeTmlShim()}`,
          },
        });
      } catch (error) {
        const message = `Cannot start the workload: ${(error as Error).message}`;
        await this.#record({ outcome: "error", message }, "puppet");
        return;
      }
      this.options.log.info("workload started", { pid: this.#workload.pid });
    } else {
      return;
    }
    void this.#workload.finished.then((result) => this.#record(result, "workload"));
  }

  async #handleControl(request: PuppetControlRequest): Promise<PuppetControlReply> {
    if (request.type === "terminate_request") {
      this.#terminateRequested = true;
      await this.#flush().catch(() => {});
      return { ok: true };
    }
    const { type: _, ...result } = request;
    if (!await this.#record(result, "tml puppet finish")) {
      return {
        ok: false,
        message: `Cannot report a result: the job already has one (${this.#result!.outcome})`,
      };
    }
    return { ok: true };
  }

  /** Keeps the first result (also on disk, for a restart) and sends it; false if one existed. */
  async #record(result: WorkloadResult, source: string): Promise<boolean> {
    if (this.#result !== undefined) return false;
    this.#result = result;
    await this.#state!.writeResult(result);
    this.options.log.info("workload finished", {
      outcome: result.outcome,
      exit_code: result.exit_code,
      source,
    });
    await this.#flush().catch(() => {});
    return true;
  }

  /** Sends what the supervisor must know: all output so far, then the result and requests. */
  async #flush(): Promise<void> {
    const channel = this.#channel;
    if (channel === undefined) return;
    await this.#pumpOutput();
    if (this.#result !== undefined) {
      await channel.send({ type: "workload_finished", ...this.#result });
    }
    if (this.#terminateRequested) await channel.send({ type: "terminate_request" });
  }

  async #pumpOutput(): Promise<void> {
    const tails = this.#tails;
    if (tails === undefined) return;
    await Promise.all([tails.stdout.pump(), tails.stderr.pump()]);
  }

  #makeTails(answer: AuthOk): Record<WorkloadStream, OutputTail> {
    const make = (stream: WorkloadStream) =>
      new OutputTail(
        this.#state!.outputPath(stream),
        answer.output_offsets[stream],
        async (offset, bytes) => {
          const channel = this.#channel;
          if (channel === undefined) throw new Error("no channel");
          await channel.send({
            type: "workload_output",
            stream,
            offset,
            data: Buffer.from(bytes).toString("base64"),
          });
          // Echo to this process's own output once, for a console or a developer's terminal;
          // bytes before the supervisor's offset were echoed by an earlier run of the puppet.
          const from = Math.max(this.#echoed[stream], offset);
          if (this.options.echoWorkloadOutput && from < offset + bytes.length) {
            const sink = stream === "stdout" ? Deno.stdout : Deno.stderr;
            await writeAll(sink, bytes.subarray(from - offset));
            this.#echoed[stream] = offset + bytes.length;
          }
        },
      );
    return { stdout: make("stdout"), stderr: make("stderr") };
  }
}

async function writeAll(sink: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  for (let at = 0; at < bytes.length;) at += await sink.write(bytes.subarray(at));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
