/**
 * The supervisor's websocket to the switchboard (`lib/protocol/supervisor.ts`): connects with
 * its bearer token, says hello listing the jobs it holds (also after every reconnect), answers
 * commands with acks, keeps the connection alive, and reconnects with capped exponential
 * backoff and jitter. A refusal (a protocol version the switchboard does not speak, a token of
 * another supervisor) is fatal: retrying would not change it.
 *
 * Job updates and console chunks wait in an outbox until the switchboard acknowledges them, and
 * are resent in order after a reconnect, so none is lost. The hello after a reconnect names a
 * job whose updates are still unacknowledged in the state the switchboard last acknowledged,
 * not the supervisor's newer one: the switchboard must not see `terminated` in a hello before
 * the update that carries the exit status.
 */
import { Buffer } from "node:buffer";
import { TmlError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import {
  type ConsoleOutput,
  type HeldJob,
  type JobSpec,
  type JobUpdate,
  MAX_CONSOLE_CHUNK_BYTES,
  type StopReason,
  type SupervisorMessage,
  SwitchboardMessage,
} from "../../lib/protocol/supervisor.ts";
import { MIN_PEER_PROTOCOL_VERSION, PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { TML_VERSION } from "../../lib/version.ts";

export interface ConnectionHandlers {
  heldJobs(): HeldJob[];
  startJob(job: JobSpec): { ok: true } | { ok: false; message: string };
  stopJob(jobId: string, reason: StopReason): Promise<void>;
}

/** Clock and timers, injectable so tests of backoff and keepalive run in milliseconds. */
export interface Timers {
  now(): number;
  random(): number;
  setTimeout(callback: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId | undefined): void;
  setInterval(callback: () => void, ms: number): TimerId;
  clearInterval(id: TimerId | undefined): void;
}

export type TimerId = ReturnType<typeof setTimeout>;

const SYSTEM_TIMERS: Timers = {
  now: () => Date.now(),
  random: () => Math.random(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (id) => clearInterval(id),
};

export interface ConnectionOptions {
  switchboardUrl: string;
  supervisorId: string;
  token: string;
  tags?: string[];
  driver: string;
  log: Logger;
  /** How long a connection attempt may take until welcomed (default 15 s). */
  welcomeTimeoutMs?: number;
  /** Reconnect backoff bounds (default 500 ms to 15 s), each delay jittered by ±50%. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  timers?: Timers;
}

export class RefusedError extends TmlError {
  constructor(message: string) {
    super("supervisor_refused", message, { status: 403 });
  }
}

export type Report = Omit<JobUpdate, "type" | "msg_id">;
type OutboxEntry = {
  message: Omit<JobUpdate, "msg_id"> | Omit<ConsoleOutput, "msg_id">;
  /** The msg_id it was last sent with on the current connection; unset until sent. */
  msgId?: number;
};

/** Consoles arrived in protocol version 2; an older switchboard does not take them. */
const CONSOLE_SINCE_VERSION = 2;
/** Keepalive intervals of silence after which the connection counts as dead. */
const SILENT_INTERVALS = 3;

export class SwitchboardConnection {
  readonly #timers: Timers;
  #outbox: OutboxEntry[] = [];
  /** The last state the switchboard acknowledged per job, for the hello. */
  #acked = new Map<string, HeldJob>();
  #nextMsgId = 1;
  #socket?: WebSocket;
  #welcomed = false;
  #peerVersion = PROTOCOL_VERSION;
  #stopped = false;
  #fatal?: Error;
  #wake?: () => void;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.#timers = options.timers ?? SYSTEM_TIMERS;
  }

  /** Messages waiting for an acknowledgement. */
  get pending(): number {
    return this.#outbox.length;
  }

  /** Queues a job update; it is sent now if connected, else after the next hello. */
  report(report: Report): void {
    this.#enqueue({ message: { type: "job_update", ...report } });
  }

  /** Queues a chunk of a job's console, at its byte offset in the job's console stream. */
  console(jobId: string, offset: number, bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; at += MAX_CONSOLE_CHUNK_BYTES) {
      const chunk = bytes.subarray(at, at + MAX_CONSOLE_CHUNK_BYTES);
      this.#enqueue({
        message: {
          type: "console_output",
          job_id: jobId,
          offset: offset + at,
          data: Buffer.from(chunk).toString("base64"),
        },
      });
    }
  }

  /** Runs until `close()`; rejects with a RefusedError when the switchboard refuses. */
  async run(): Promise<void> {
    const minBackoff = this.options.minBackoffMs ?? 500;
    let backoff = minBackoff;
    while (!this.#stopped) {
      const welcomed = await this.#connectOnce();
      if (this.#fatal !== undefined) throw this.#fatal;
      if (this.#stopped) return;
      if (welcomed) backoff = minBackoff;
      const delay = Math.round(backoff * (0.5 + this.#timers.random()));
      this.options.log.info("reconnecting to the switchboard", { in_ms: delay });
      await new Promise<void>((resolve) => {
        const timer = this.#timers.setTimeout(resolve, delay);
        this.#wake = () => {
          this.#timers.clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
      backoff = Math.min(backoff * 2, this.options.maxBackoffMs ?? 15_000);
    }
  }

  /** Waits until every queued message is acknowledged, or `timeoutMs` passes. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = this.#timers.now() + timeoutMs;
    while (this.#outbox.length > 0 && this.#timers.now() < deadline && !this.#stopped) {
      await new Promise<void>((resolve) => this.#timers.setTimeout(resolve, 20));
    }
    return this.#outbox.length === 0;
  }

  close(): void {
    this.#stopped = true;
    this.#socket?.close();
    this.#wake?.();
  }

  #enqueue(entry: OutboxEntry): void {
    this.#outbox.push(entry);
    if (this.#welcomed) this.#send(entry);
  }

  /** Jobs for the hello: those the runner holds, and those with unacknowledged updates. */
  #heldJobs(): HeldJob[] {
    const held = new Map(this.handlers.heldJobs().map((job) => [job.job_id, job]));
    for (const { message } of this.#outbox) {
      if (message.type !== "job_update") continue;
      held.set(
        message.job_id,
        this.#acked.get(message.job_id) ??
          { job_id: message.job_id, state: "initializing", sub_state: null },
      );
    }
    return [...held.values()];
  }

  /** One connection's life; resolves when it ends, saying whether it was welcomed. */
  #connectOnce(): Promise<boolean> {
    const url = this.options.switchboardUrl.replace(/^http/, "ws").replace(/\/+$/, "") +
      "/api/v1/supervisors/connect";
    const timers = this.#timers;
    return new Promise((resolve) => {
      let welcomed = false;
      let lastHeard = timers.now();
      let keepalive: TimerId | undefined;
      let socket: WebSocket;
      try {
        socket = new WebSocket(url, {
          headers: { authorization: `Bearer ${this.options.token}` },
        });
      } catch (error) {
        this.#fatal = new TmlError(
          "invalid_config",
          `Cannot connect to the switchboard at "${url}": ${(error as Error).message}`,
          { status: 400, field: "switchboard" },
        );
        return resolve(false);
      }
      this.#socket = socket;
      // An attempt that hangs (a proxy that never answers the upgrade) is given up.
      const welcomeTimer = timers.setTimeout(() => {
        if (!welcomed) {
          this.options.log.warn("no welcome from the switchboard in time, reconnecting");
          socket.close();
        }
      }, this.options.welcomeTimeoutMs ?? 15_000);
      const send = (message: SupervisorMessage) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
      };
      socket.onopen = () => {
        send({
          type: "hello",
          protocol_version: PROTOCOL_VERSION,
          tml_version: TML_VERSION,
          supervisor_id: this.options.supervisorId,
          driver: this.options.driver,
          tags: this.options.tags,
          jobs: this.#heldJobs(),
        });
      };
      socket.onerror = (event) => {
        if (!welcomed) {
          this.options.log.warn("cannot connect to the switchboard", {
            url: this.options.switchboardUrl,
            error: (event as ErrorEvent).message,
          });
        }
      };
      socket.onclose = () => {
        timers.clearInterval(keepalive);
        timers.clearTimeout(welcomeTimer);
        if (this.#socket === socket) {
          this.#welcomed = false;
          for (const entry of this.#outbox) entry.msgId = undefined;
        }
        if (welcomed) this.options.log.warn("disconnected from the switchboard");
        resolve(welcomed);
      };
      socket.onmessage = (event) => {
        lastHeard = timers.now();
        const message = this.#parse(event.data);
        if (message === undefined) return;
        switch (message.type) {
          case "welcome": {
            if (message.protocol_version < MIN_PEER_PROTOCOL_VERSION) {
              this.#refuse(
                socket,
                `the switchboard speaks protocol version ${message.protocol_version}, this ` +
                  `supervisor needs at least ${MIN_PEER_PROTOCOL_VERSION}; upgrade the switchboard`,
              );
              return;
            }
            welcomed = true;
            this.#welcomed = true;
            this.#peerVersion = message.protocol_version;
            this.options.log.info("connected to the switchboard", {
              url: this.options.switchboardUrl,
            });
            const interval = message.keepalive_interval_ms;
            keepalive = timers.setInterval(() => {
              if (timers.now() - lastHeard > SILENT_INTERVALS * interval) {
                this.options.log.warn("the switchboard is silent, reconnecting");
                socket.close();
                return;
              }
              send({ type: "ping", nonce: timers.now() });
            }, interval);
            for (const entry of [...this.#outbox]) this.#send(entry);
            return;
          }
          case "refused":
            this.#refuse(socket, message.message);
            return;
          case "ping":
            send({ type: "pong", nonce: message.nonce });
            return;
          case "pong":
            return;
          case "ack":
            this.#acknowledged(message.msg_id, message.ok, message.error?.message);
            return;
          case "start_job": {
            const answer = this.handlers.startJob(message.job);
            send(
              answer.ok ? { type: "ack", msg_id: message.msg_id, ok: true } : {
                type: "ack",
                msg_id: message.msg_id,
                ok: false,
                error: { code: "busy", message: answer.message },
              },
            );
            return;
          }
          case "stop_job":
            // Acknowledged at once; what really happens arrives as job updates.
            send({ type: "ack", msg_id: message.msg_id, ok: true });
            void this.handlers.stopJob(message.job_id, message.reason);
            return;
        }
      };
    });
  }

  /** Validates a message; garbage is logged (never its content) and ignored. */
  #parse(data: unknown): SwitchboardMessage | undefined {
    let raw: unknown;
    try {
      raw = JSON.parse(String(data));
    } catch {
      this.options.log.warn("ignoring a switchboard message that is not JSON");
      return undefined;
    }
    const parsed = SwitchboardMessage.safeParse(raw);
    if (parsed.success) return parsed.data;
    this.options.log.warn("ignoring an invalid switchboard message", {
      detail: formatZodError(parsed.error, "switchboard message").split("\n")[0],
    });
    return undefined;
  }

  #refuse(socket: WebSocket, reason: string): void {
    this.#fatal = new RefusedError(`The switchboard refused this supervisor: ${reason}`);
    this.#stopped = true;
    socket.close();
  }

  #acknowledged(msgId: number, ok: boolean, error: string | undefined): void {
    const index = this.#outbox.findIndex((entry) => entry.msgId === msgId);
    if (index < 0) return;
    const [{ message }] = this.#outbox.splice(index, 1);
    if (!ok) {
      // Retrying the same message would be refused again: log it and move on.
      this.options.log.warn("the switchboard rejected a message", {
        type: message.type,
        job_id: message.job_id,
        error,
      });
    }
    if (message.type !== "job_update" || message.state === undefined) return;
    if (message.state === "terminated") {
      this.#acked.delete(message.job_id);
    } else if (ok) {
      this.#acked.set(message.job_id, {
        job_id: message.job_id,
        state: message.state,
        sub_state: message.sub_state ?? this.#acked.get(message.job_id)?.sub_state ?? null,
      });
    }
  }

  #send(entry: OutboxEntry): void {
    if (
      entry.message.type === "console_output" && this.#peerVersion < CONSOLE_SINCE_VERSION
    ) {
      this.#outbox.splice(this.#outbox.indexOf(entry), 1);
      return;
    }
    entry.msgId = this.#nextMsgId++;
    if (this.#socket?.readyState === WebSocket.OPEN) {
      this.#socket.send(JSON.stringify({ ...entry.message, msg_id: entry.msgId }));
    }
  }
}
