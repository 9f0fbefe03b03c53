/**
 * A supervisor driven step by step by a test or benchmark: it speaks the real websocket
 * protocol of `lib/protocol/supervisor.ts` to a real switchboard, records the commands it
 * receives, and reports exactly the job updates the script asks for. Tests use it to hold a job
 * in a precise state (cancel while `initializing`, report an illegal transition); the dispatch
 * benchmark runs hundreds of them.
 */
import {
  type HeldJob,
  type JobUpdate,
  type StartJob,
  type StopJob,
  SwitchboardMessage,
} from "../../lib/protocol/supervisor.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { TML_VERSION } from "../../lib/version.ts";

type Ack = { ok: boolean; error?: { code: string; message: string } };
type Command = StartJob | StopJob;

export class ScriptedSupervisor {
  readonly commands: Command[] = [];
  onCommand?: (command: Command) => void;
  welcomed: Promise<void>;
  #socket!: WebSocket;
  #nextMsgId = 1;
  #acks = new Map<number, (ack: Ack) => void>();
  #commandWaiters: Array<() => void> = [];
  #welcome!: () => void;
  #refused?: string;
  #closed!: Promise<void>;

  constructor(
    readonly switchboardUrl: string,
    readonly supervisorId: string,
    private readonly token: string,
    private readonly options: { tags?: string[]; autoAck?: boolean; protocolVersion?: number } = {},
  ) {
    this.welcomed = Promise.resolve();
  }

  /** Connects and says hello, listing `held` jobs; resolves once welcomed. */
  async connect(held: HeldJob[] = []): Promise<void> {
    const url = this.switchboardUrl.replace(/^http/, "ws") + "/api/v1/supervisors/connect";
    this.welcomed = new Promise((resolve) => (this.#welcome = resolve));
    // Deno's WebSocket accepts headers; the supervisor token is checked before the upgrade.
    this.#socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } });
    this.#closed = new Promise((resolve) =>
      this.#socket.addEventListener("close", () => resolve())
    );
    this.#socket.onmessage = (event) => this.#receive(String(event.data));
    await new Promise<void>((resolve, reject) => {
      this.#socket.onopen = () => resolve();
      this.#socket.onerror = (event) =>
        reject(new Error(`websocket error: ${(event as ErrorEvent).message}`));
    });
    this.send({
      type: "hello",
      protocol_version: this.options.protocolVersion ?? PROTOCOL_VERSION,
      tml_version: TML_VERSION,
      supervisor_id: this.supervisorId,
      driver: "scripted",
      tags: this.options.tags,
      jobs: held,
    });
    await Promise.race([
      this.welcomed,
      this.#closed.then(() => {
        throw new Error(`connection closed before welcome: ${this.#refused ?? "no reason"}`);
      }),
    ]);
  }

  get refusal(): string | undefined {
    return this.#refused;
  }

  send(message: unknown): void {
    this.#socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Sends a job update and resolves with the switchboard's acknowledgement. */
  update(update: Omit<JobUpdate, "type" | "msg_id">): Promise<Ack> {
    return this.request({ type: "job_update", ...update });
  }

  /** Sends any message with a fresh msg_id (valid or not) and resolves with its ack. */
  request(message: Record<string, unknown>): Promise<Ack> {
    const msgId = this.#nextMsgId++;
    return new Promise((resolve) => {
      this.#acks.set(msgId, resolve);
      this.send({ ...message, msg_id: msgId });
    });
  }

  /** Waits for the next command matching `predicate` (already received ones count). */
  async nextCommand<T extends Command["type"]>(
    type: T,
    predicate: (command: Extract<Command, { type: T }>) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<Extract<Command, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = this.commands.find((command) =>
        command.type === type && predicate(command as Extract<Command, { type: T }>)
      );
      if (found !== undefined) return found as Extract<Command, { type: T }>;
      if (Date.now() > deadline) throw new Error(`no ${type} command within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#commandWaiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  async close(): Promise<void> {
    if (
      this.#socket.readyState === WebSocket.OPEN || this.#socket.readyState === WebSocket.CONNECTING
    ) {
      this.#socket.close();
    }
    await this.#closed;
  }

  #receive(data: string): void {
    const message = SwitchboardMessage.parse(JSON.parse(data));
    switch (message.type) {
      case "welcome":
        this.#welcome();
        return;
      case "refused":
        this.#refused = message.message;
        return;
      case "ack":
        this.#acks.get(message.msg_id)?.({ ok: message.ok, error: message.error });
        this.#acks.delete(message.msg_id);
        return;
      case "ping":
        this.send({ type: "pong", nonce: message.nonce });
        return;
      case "pong":
        return;
      case "start_job":
      case "stop_job":
        this.commands.push(message);
        if (this.options.autoAck !== false) {
          this.send({ type: "ack", msg_id: message.msg_id, ok: true });
        }
        this.onCommand?.(message);
        for (const wake of this.#commandWaiters.splice(0)) wake();
        return;
    }
  }
}
