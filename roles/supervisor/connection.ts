/**
 * The supervisor's websocket to the switchboard: connects with its bearer token, says hello
 * listing the jobs it holds (also after every reconnect), answers commands with acks, keeps
 * the connection alive, and reconnects with capped exponential backoff. Job updates wait in an
 * outbox until the switchboard acknowledges them, so none is lost across a reconnect, and they
 * are resent in order.
 */
import type { Logger } from "../../lib/log.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import { Buffer } from "node:buffer";
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
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { TML_VERSION } from "../../lib/version.ts";
import { TmlError } from "../../lib/errors.ts";

export interface ConnectionHandlers {
  heldJobs(): HeldJob[];
  startJob(job: JobSpec): Promise<{ ok: true } | { ok: false; message: string }>;
  stopJob(jobId: string, reason: StopReason): Promise<void>;
}

export interface ConnectionOptions {
  switchboardUrl: string;
  supervisorId: string;
  token: string;
  tags?: string[];
  driver: string;
  log: Logger;
  /** Backoff bounds for reconnecting, in ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

type Report = Omit<JobUpdate, "type" | "msg_id">;
/** A message waiting for its acknowledgement; it gets a fresh msg_id each time it is sent. */
type OutboxEntry = {
  message: Omit<JobUpdate, "msg_id"> | Omit<ConsoleOutput, "msg_id">;
  msgId?: number;
};

export class SwitchboardConnection {
  #outbox: OutboxEntry[] = [];
  #nextMsgId = 1;
  #socket?: WebSocket;
  #welcomed = false;
  #stopped = false;
  #fatal?: Error;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {}

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

  #enqueue(entry: OutboxEntry): void {
    this.#outbox.push(entry);
    if (this.#welcomed) this.#sendReport(entry);
  }

  /** Runs until `close()`, or rejects when the switchboard refuses this supervisor. */
  async run(): Promise<void> {
    let backoff = this.options.minBackoffMs ?? 500;
    while (!this.#stopped) {
      const welcomedAt = await this.#connectOnce();
      if (this.#fatal !== undefined) throw this.#fatal;
      if (this.#stopped) return;
      if (welcomedAt !== undefined) backoff = this.options.minBackoffMs ?? 500;
      const delay = backoff * (0.5 + Math.random());
      this.options.log.info("reconnecting to the switchboard", { in_ms: Math.round(delay) });
      await new Promise((resolve) => setTimeout(resolve, delay));
      backoff = Math.min(backoff * 2, this.options.maxBackoffMs ?? 15_000);
    }
  }

  close(): void {
    this.#stopped = true;
    this.#socket?.close();
  }

  /** One connection's life; resolves when it ends, with the time it was welcomed (if it was). */
  #connectOnce(): Promise<number | undefined> {
    const url = this.options.switchboardUrl.replace(/^http/, "ws").replace(/\/+$/, "") +
      "/api/v1/supervisors/connect";
    return new Promise((resolve) => {
      let welcomedAt: number | undefined;
      let lastHeard = Date.now();
      let keepalive: ReturnType<typeof setInterval> | undefined;
      const socket = new WebSocket(url, {
        headers: { authorization: `Bearer ${this.options.token}` },
      });
      this.#socket = socket;
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
          jobs: this.handlers.heldJobs(),
        });
      };
      socket.onerror = () => {};
      socket.onclose = () => {
        clearInterval(keepalive);
        this.#welcomed = false;
        for (const entry of this.#outbox) entry.msgId = undefined;
        if (welcomedAt !== undefined) this.options.log.warn("disconnected from the switchboard");
        resolve(welcomedAt);
      };
      socket.onmessage = (event) => {
        lastHeard = Date.now();
        let parsed;
        try {
          parsed = SwitchboardMessage.safeParse(JSON.parse(String(event.data)));
        } catch {
          this.options.log.warn("ignoring a message that is not JSON");
          return;
        }
        if (!parsed.success) {
          this.options.log.warn("ignoring an invalid message", {
            detail: formatZodError(parsed.error, "switchboard message").split("\n")[0],
          });
          return;
        }
        const message = parsed.data;
        switch (message.type) {
          case "welcome":
            welcomedAt = Date.now();
            this.#welcomed = true;
            this.options.log.info("connected to the switchboard", {
              url: this.options.switchboardUrl,
            });
            keepalive = setInterval(() => {
              if (Date.now() - lastHeard > 3 * message.keepalive_interval_ms) {
                this.options.log.warn("switchboard silent for three keepalive intervals");
                socket.close();
                return;
              }
              send({ type: "ping", nonce: Date.now() });
            }, message.keepalive_interval_ms);
            for (const entry of this.#outbox) this.#sendReport(entry);
            return;
          case "refused":
            this.#fatal = new TmlError(
              "refused",
              `The switchboard refused this supervisor: ${message.message}`,
            );
            this.#stopped = true;
            return;
          case "ping":
            send({ type: "pong", nonce: message.nonce });
            return;
          case "pong":
            return;
          case "ack": {
            const index = this.#outbox.findIndex((entry) => entry.msgId === message.msg_id);
            if (index >= 0) {
              if (!message.ok) {
                this.options.log.warn("the switchboard rejected a message", {
                  job_id: this.#outbox[index].message.job_id,
                  error: message.error?.message,
                });
              }
              this.#outbox.splice(index, 1);
            }
            return;
          }
          case "start_job":
            void this.handlers.startJob(message.job).then((answer) =>
              send(
                answer.ok ? { type: "ack", msg_id: message.msg_id, ok: true } : {
                  type: "ack",
                  msg_id: message.msg_id,
                  ok: false,
                  error: { code: "busy", message: answer.message },
                },
              )
            );
            return;
          case "stop_job":
            // Acknowledge receipt at once; the outcome arrives as job updates.
            send({ type: "ack", msg_id: message.msg_id, ok: true });
            void this.handlers.stopJob(message.job_id, message.reason);
            return;
        }
      };
    });
  }

  #sendReport(entry: OutboxEntry): void {
    entry.msgId = this.#nextMsgId++;
    if (this.#socket?.readyState === WebSocket.OPEN) {
      this.#socket.send(JSON.stringify({ ...entry.message, msg_id: entry.msgId }));
    }
  }
}
