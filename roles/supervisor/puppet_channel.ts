/**
 * The supervisor's end of the puppet channel: accepts a connection, checks the per-job secret
 * (constant time), hands the puppet its job, and turns its frames into `HostEvents`. A puppet
 * that restarts reconnects with the same secret and replaces the old connection. Missing
 * heartbeats for `heartbeatTimeoutMs` mean a hung host.
 */
import { timingSafeEqual } from "node:crypto";
import { encodeFrame, readFrames } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  type PuppetJob,
  PuppetMessage,
  type SupervisorToPuppet,
} from "../../lib/protocol/puppet.ts";
import type { Logger } from "../../lib/log.ts";
import type { HostEvents } from "./host_driver.ts";

export interface PuppetConnection {
  readable: ReadableStream<Uint8Array>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

export class PuppetChannel {
  #current?: PuppetConnection;
  #lastHeard = 0;
  #watchdog?: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(
    private readonly secret: string,
    private readonly job: PuppetJob,
    private readonly events: HostEvents,
    private readonly log: Logger,
    private readonly heartbeatTimeoutMs: number,
  ) {}

  /** Serves one incoming connection until it ends. */
  async serve(connection: PuppetConnection): Promise<void> {
    const send = (message: SupervisorToPuppet) => connection.write(encodeFrame(message));
    const frames = readFrames(connection.readable, PuppetMessage, {
      maxBytes: MAX_PUPPET_FRAME_BYTES,
      onInvalid: (detail) => this.log.warn("ignoring an invalid puppet frame", { detail }),
    });
    try {
      const first = await frames.next();
      if (first.done || first.value.type !== "auth" || !this.#secretMatches(first.value.secret)) {
        await send({ type: "auth_failed", message: "Cannot authenticate puppet: wrong secret" })
          .catch(() => {});
        this.log.warn("refused a puppet connection with a wrong secret");
        return;
      }
      this.#current?.close();
      this.#current = connection;
      this.#heard();
      await send({ type: "auth_ok", job: this.job });
      for await (const message of frames) {
        this.#heard();
        switch (message.type) {
          case "ready":
            this.events.ready();
            break;
          case "workload_output":
            this.events.output(message.stream, message.data);
            break;
          case "workload_finished":
            this.events.workloadFinished(message.outcome, message.exit_code, message.message);
            break;
          case "terminate_request":
            this.events.terminateRequested();
            break;
          case "heartbeat":
            await send({ type: "heartbeat" });
            break;
          case "auth":
            break;
        }
      }
    } catch (error) {
      this.log.warn("puppet connection failed", { error: (error as Error).message });
    } finally {
      if (this.#current === connection) this.#current = undefined;
      try {
        connection.close();
      } catch {
        // Already closed.
      }
    }
  }

  /** Asks the puppet to shut down; best effort. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watchdog);
    await this.#current?.write(encodeFrame({ type: "shutdown" })).catch(() => {});
  }

  #heard(): void {
    this.#lastHeard = Date.now();
    this.#watchdog ??= setInterval(() => {
      if (!this.#closed && Date.now() - this.#lastHeard > this.heartbeatTimeoutMs) {
        clearInterval(this.#watchdog);
        this.events.failed(`the puppet sent no heartbeat for ${this.heartbeatTimeoutMs} ms`);
      }
    }, Math.min(1_000, this.heartbeatTimeoutMs));
  }

  #secretMatches(offered: string): boolean {
    const a = new TextEncoder().encode(offered);
    const b = new TextEncoder().encode(this.secret);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
