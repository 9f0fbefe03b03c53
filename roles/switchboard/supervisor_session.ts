/**
 * One supervisor's websocket connection, from the switchboard's side: validates every message
 * with the protocol schemas, processes them one at a time in arrival order, numbers and tracks
 * the commands it sends until they are acknowledged, and keeps the connection alive (pings
 * every interval; silence for three intervals closes it).
 */
import { z } from "zod";
import type { Logger } from "../../lib/log.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import {
  type AckMessage,
  type ConsoleOutput,
  type JobUpdate,
  MAX_SUPERVISOR_MESSAGE_BYTES,
  type StartJob,
  type StopJob,
  type SupervisorHello,
  SupervisorMessage,
  type SwitchboardMessage,
} from "../../lib/protocol/supervisor.ts";

export interface SessionHandlers {
  /** First message of the connection; the session is ready for commands once it resolves. */
  onHello(session: SupervisorSession, hello: SupervisorHello): Promise<void>;
  /** Consecutive updates of one job; each answer becomes that update's acknowledgement. */
  onJobUpdates(
    session: SupervisorSession,
    updates: JobUpdate[],
  ): Promise<Array<{ ok: true } | { ok: false; code: string; message: string }>>;
  /** A chunk of a job's console; the answer becomes the acknowledgement. */
  onConsoleOutput(
    session: SupervisorSession,
    output: ConsoleOutput,
  ): Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  onClose(session: SupervisorSession): void;
}

type Command = Omit<StartJob, "msg_id"> | Omit<StopJob, "msg_id">;

const HELLO_DEADLINE_MS = 10_000;

export class SupervisorSession {
  #nextMsgId = 1;
  #pendingAcks = new Map<number, (ack: AckMessage) => void>();
  /** Parsed messages waiting to be handled, in arrival order. */
  #pending: SupervisorMessage[] = [];
  #draining = false;
  #helloSeen = false;
  #closed = false;
  #lastHeard = Date.now();
  #keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  #helloTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly supervisorId: string,
    private readonly keepaliveMs: number,
    private readonly log: Logger,
    private readonly handlers: SessionHandlers,
  ) {
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = () => this.#closedByPeer();
    socket.onerror = () => {};
    this.#helloTimer = setTimeout(() => {
      if (!this.#helloSeen) this.close(4002, "no hello within 10 s");
    }, HELLO_DEADLINE_MS);
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Starts pinging once the session is welcomed. */
  startKeepalive(): void {
    this.#keepaliveTimer = setInterval(() => {
      if (Date.now() - this.#lastHeard > 3 * this.keepaliveMs) {
        this.log.warn("supervisor silent for three keepalive intervals, closing", {
          supervisor_id: this.supervisorId,
        });
        this.close(4001, "keepalive timeout");
        return;
      }
      this.send({ type: "ping", nonce: Date.now() });
    }, this.keepaliveMs);
  }

  send(message: SwitchboardMessage): void {
    if (this.#closed || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify(message));
  }

  /** Sends a command and resolves with its acknowledgement (undefined if the connection ends). */
  command(command: Command): Promise<AckMessage | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const msgId = this.#nextMsgId++;
    return new Promise((resolve) => {
      this.#pendingAcks.set(msgId, resolve);
      this.send({ ...command, msg_id: msgId } as SwitchboardMessage);
    });
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closing.
    }
    this.#closedByPeer();
  }

  #closedByPeer(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepaliveTimer);
    clearTimeout(this.#helloTimer);
    for (const resolve of this.#pendingAcks.values()) resolve(undefined as unknown as AckMessage);
    this.#pendingAcks.clear();
    this.handlers.onClose(this);
  }

  #receive(data: unknown): void {
    this.#lastHeard = Date.now();
    if (typeof data !== "string" || data.length > MAX_SUPERVISOR_MESSAGE_BYTES) {
      this.log.warn("ignoring a non-text or oversized message", {
        supervisor_id: this.supervisorId,
      });
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      this.log.warn("ignoring a message that is not JSON", { supervisor_id: this.supervisorId });
      return;
    }
    const parsed = SupervisorMessage.safeParse(raw);
    if (!parsed.success) {
      this.#rejectInvalid(raw, parsed.error);
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      // Acknowledgements and keepalives are answered at once; they change no job.
      case "ack": {
        const resolve = this.#pendingAcks.get(message.msg_id);
        this.#pendingAcks.delete(message.msg_id);
        resolve?.(message);
        return;
      }
      case "ping":
        this.send({ type: "pong", nonce: message.nonce });
        return;
      case "pong":
        return;
    }
    this.#pending.push(message);
    if (!this.#draining) void this.#drain();
  }

  /**
   * Handles hello and job updates strictly in arrival order. Consecutive updates of the same
   * job (a supervisor reporting initializing, ready and terminated back to back) are applied
   * as one write; each still gets its own acknowledgement.
   */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#pending.length > 0) {
        const message = this.#pending.shift()!;
        if (message.type === "hello") {
          if (this.#helloSeen) continue;
          this.#helloSeen = true;
          clearTimeout(this.#helloTimer);
          await this.handlers.onHello(this, message);
          continue;
        }
        if (!this.#helloSeen) {
          this.log.warn("ignoring a message before hello", { supervisor_id: this.supervisorId });
          continue;
        }
        if (message.type === "console_output") {
          this.#acknowledge(message.msg_id, await this.handlers.onConsoleOutput(this, message));
          continue;
        }
        if (message.type !== "job_update") continue;
        const batch: JobUpdate[] = [message];
        while (true) {
          const next = this.#pending[0];
          if (next?.type !== "job_update" || next.job_id !== message.job_id) break;
          batch.push(this.#pending.shift() as JobUpdate);
        }
        const answers = await this.handlers.onJobUpdates(this, batch);
        batch.forEach((update, index) => this.#acknowledge(update.msg_id, answers[index]));
      }
    } catch (error) {
      this.log.error("failed to handle a supervisor message", {
        supervisor_id: this.supervisorId,
        error: error instanceof Error ? error.message : String(error),
      });
      if (this.#pending.length > 0) void this.#drain();
    } finally {
      this.#draining = false;
    }
  }

  #acknowledge(
    msgId: number,
    answer: { ok: true } | { ok: false; code: string; message: string },
  ): void {
    this.send(
      answer.ok ? { type: "ack", msg_id: msgId, ok: true } : {
        type: "ack",
        msg_id: msgId,
        ok: false,
        error: { code: answer.code, message: answer.message },
      },
    );
  }

  /** A malformed command still gets an answer when it carries a msg_id, naming the field. */
  #rejectInvalid(raw: unknown, error: z.ZodError): void {
    const detail = formatZodError(error, "supervisor message").split("\n")[0];
    this.log.warn("rejecting an invalid supervisor message", {
      supervisor_id: this.supervisorId,
      error: detail,
    });
    const msgId = typeof raw === "object" && raw !== null
      ? (raw as Record<string, unknown>).msg_id
      : undefined;
    if (typeof msgId === "number" && Number.isInteger(msgId) && msgId >= 0) {
      this.send({
        type: "ack",
        msg_id: msgId,
        ok: false,
        error: { code: "invalid_message", message: `Cannot accept message: ${detail}` },
      });
    }
  }
}
