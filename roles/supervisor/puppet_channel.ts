/**
 * The supervisor's end of the puppet channel, for every host driver: it is handed each byte
 * stream that reaches the host's channel (a TCP connection, a virtio-serial socket), checks the
 * per-job secret in constant time, gives the puppet its job, and turns the puppet's frames
 * into `HostEvents`.
 *
 * A puppet that restarts or reconnects authenticates again with the same secret; its new
 * connection replaces the old one and `auth_ok` tells it how much output is already here, so
 * nothing is lost or repeated. Silence for `missedHeartbeats` heartbeat intervals after the
 * first authentication is a hung host.
 */
import { Buffer } from "node:buffer";
import type { Logger } from "../../lib/log.ts";
import { type ByteStream, FramedChannel } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  type PuppetJob,
  PuppetMessage,
  puppetSecretMatches,
  type Restored,
  type SupervisorToPuppet,
  type WorkloadOutput,
  type WorkloadStream,
} from "../../lib/protocol/puppet.ts";
import { MIN_PEER_PROTOCOL_VERSION, PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import type { HostEvents } from "./host_driver.ts";

export interface PuppetChannelOptions {
  secret: string;
  job: PuppetJob;
  events: HostEvents;
  log: Logger;
  /** How often the puppet sends a heartbeat (default 2 s). */
  heartbeatIntervalMs?: number;
  /** Heartbeats missed in a row before the host counts as hung (default 3). */
  missedHeartbeats?: number;
  /** How long a new connection has to authenticate (default 10 s). */
  authTimeoutMs?: number;
  /**
   * The host was resumed from a warm-start snapshot: its puppet awaits the answer to the
   * template's `auth`, so the first connection starts with `restored` (`lib/protocol/puppet.ts`).
   */
  restored?: boolean;
}

type Channel = FramedChannel<typeof PuppetMessage, SupervisorToPuppet>;

/** A fresh per-job secret: 32 random bytes, base64url. */
export function generatePuppetSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

/** `restored` for a VM resumed now: the supervisor's clock and fresh entropy. */
export function restoredMessage(): Restored {
  return {
    type: "restored",
    time_ms: Date.now(),
    entropy: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64"),
  };
}

export class PuppetChannel {
  #current?: Channel;
  #offsets: Record<WorkloadStream, number> = { stdout: 0, stderr: 0 };
  #lastHeard = 0;
  #watchdog?: ReturnType<typeof setInterval>;
  #closed = false;
  #restorePending: boolean;
  readonly #heartbeatMs: number;

  constructor(private readonly options: PuppetChannelOptions) {
    this.#heartbeatMs = options.heartbeatIntervalMs ?? 2_000;
    this.#restorePending = options.restored ?? false;
  }

  /** Serves one connection until it ends or is replaced. */
  async serve(stream: ByteStream): Promise<void> {
    const { log } = this.options;
    const channel: Channel = new FramedChannel(stream, PuppetMessage, {
      maxBytes: MAX_PUPPET_FRAME_BYTES,
      onInvalid: (detail) => log.warn("ignoring an invalid puppet frame", { detail }),
    });
    try {
      if (this.#restorePending) {
        this.#restorePending = false;
        await channel.send(restoredMessage());
      }
      if (!await this.#authenticate(channel)) return;
      this.#current?.close();
      this.#current = channel;
      // A sign of life, but the watchdog starts only with the puppet's first message after
      // auth_ok: it sends none while it writes the job's files, which on a loaded machine
      // takes seconds (the boot timeout covers that phase).
      this.#lastHeard = performance.now();
      await channel.send({
        type: "auth_ok",
        job: this.options.job,
        heartbeat_interval_ms: this.#heartbeatMs,
        output_offsets: { ...this.#offsets },
      });
      while (true) {
        const message = await channel.receive();
        if (message === undefined) return;
        if (channel === this.#current) this.#heard();
        await this.#handle(channel, message);
      }
    } catch (error) {
      log.warn("puppet connection failed", { error: (error as Error).message });
    } finally {
      if (this.#current === channel) this.#current = undefined;
      channel.close();
    }
  }

  /**
   * Tells the puppet to shut down (best effort). No event is reported after this; the
   * connection stays open so the puppet can finish, until `close`.
   */
  async shutdown(reason: string): Promise<void> {
    this.#silence();
    await this.#current?.send({ type: "shutdown", reason }).catch(() => {});
  }

  /** Ends the channel: no more events, the current connection closed. */
  close(): void {
    this.#silence();
    this.#current?.close();
  }

  #silence(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
  }

  async #authenticate(channel: Channel): Promise<boolean> {
    const { log } = this.options;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      channel.receive(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), this.options.authTimeoutMs ?? 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    let refusal: string | undefined;
    if (first?.type !== "auth") {
      refusal = "Cannot authenticate puppet: it did not start with auth";
    } else if (first.protocol_version < MIN_PEER_PROTOCOL_VERSION) {
      refusal = `Cannot accept puppet: it speaks protocol version ${first.protocol_version}, ` +
        `this supervisor needs at least ${MIN_PEER_PROTOCOL_VERSION} (it speaks ` +
        `${PROTOCOL_VERSION}); upgrade tml in the image`;
    } else if (!puppetSecretMatches(first.secret, this.options.secret)) {
      refusal = "Cannot authenticate puppet: wrong secret";
    }
    if (this.#closed) refusal ??= "Cannot accept puppet: the job is ending";
    if (refusal === undefined) return true;
    log.warn("refused a puppet connection", { reason: refusal });
    await channel.send({ type: "auth_failed", message: refusal }).catch(() => {});
    return false;
  }

  async #handle(channel: Channel, message: PuppetMessage): Promise<void> {
    const { events } = this.options;
    if (message.type === "heartbeat") {
      await channel.send({ type: "heartbeat" });
      return;
    }
    if (this.#closed) return;
    switch (message.type) {
      case "ready":
        events.ready();
        return;
      case "workload_output":
        this.#output(message);
        return;
      case "workload_finished": {
        const { type: _, ...result } = message;
        events.workloadFinished(result);
        return;
      }
      case "terminate_request":
        events.terminateRequested();
        return;
      case "auth":
        return; // Already authenticated.
    }
  }

  /** Passes on the bytes past what was already received; a repeat after a reconnect is cut. */
  #output(message: WorkloadOutput): void {
    const bytes = Buffer.from(message.data, "base64");
    const have = this.#offsets[message.stream];
    const end = message.offset + bytes.length;
    if (end <= have) return;
    if (message.offset > have) {
      this.options.log.warn("workload output has a gap", {
        stream: message.stream,
        missing_bytes: message.offset - have,
      });
    }
    this.#offsets[message.stream] = end;
    this.options.events.output(bytes.subarray(Math.max(0, have - message.offset)));
  }

  #heard(): void {
    if (this.#closed) return;
    this.#lastHeard = performance.now();
    const limit = this.#heartbeatMs * (this.options.missedHeartbeats ?? 3);
    this.#watchdog ??= setInterval(() => {
      if (this.#closed || performance.now() - this.#lastHeard <= limit) return;
      this.close();
      this.options.events.hostLost({
        kind: "unresponsive",
        message: `the puppet sent nothing for ${limit} ms (missed heartbeats)`,
      });
    }, Math.max(10, Math.min(1_000, this.#heartbeatMs / 2)));
  }
}
