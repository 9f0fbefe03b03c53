/**
 * The supervisor's side of the rendezvous proxy (`lib/protocol/rendezvous.ts`): keeps a control
 * websocket to the rendezvous server (reconnecting with capped, jittered backoff), exposes the
 * running job's services once its host is ready and withdraws them as soon as the job ends, and
 * brings each user connection through: a TCP connection to the host's port (where the host
 * driver's `hostAddress` says it is), a data connection to the rendezvous server, bytes copied
 * both ways.
 *
 * Every `expose` carries a fresh grant from the switchboard (`POST /rendezvous/grant`), which
 * names the job this supervisor runs; the same request reports the endpoints the rendezvous
 * server gave, so the job's status lists them. Grants are renewed at half their lifetime.
 *
 *   job ready ──> sync: grant(job) ─> expose(services) ─> exposed(endpoints) ─> grant(report)
 *   job ends ───> sync: grant(none) ─> expose([]) ; open connections of the job are cut
 *   (re)connect ─> hello(grant) ─> welcome ─> sync
 */
import type { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import type { Logger } from "../../lib/log.ts";
import { splice, writeAll } from "../../lib/net/splice.ts";
import type { ServiceEndpoint } from "../../lib/protocol/api.ts";
import {
  type AgentMessage,
  DATA_PREAMBLE,
  type Exposed,
  type ExposedService,
  type Open,
  RendezvousMessage,
  type RendezvousWelcome,
} from "../../lib/protocol/rendezvous.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { TML_VERSION } from "../../lib/version.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import type { HostAddress, HostDriver } from "./host_driver.ts";

export interface RendezvousAgentOptions {
  /** The rendezvous server's base URL (`http(s)://` or `ws(s)://`). */
  url: string;
  /** The host ports to expose for every job, by name (`ssh` on 22 by default). */
  services: ExposedService[];
  /** The switchboard, authenticated with this supervisor's token. */
  switchboard: SwitchboardClient;
  driver: Pick<HostDriver, "hostAddress">;
  log: Logger;
  /** Reconnect backoff bounds (default 500 ms to 15 s), each delay jittered by ±50%. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** How long the rendezvous server has to answer an `expose`. */
const EXPOSE_TIMEOUT_MS = 15_000;
/** How long to wait before retrying a sync that failed (switchboard or server unreachable). */
const SYNC_RETRY_MS = 2_000;
/**
 * How long a connection to the host's port may take: less than a rendezvous server waits for
 * the data connection (10 s by default), so the user hears why rather than a timeout.
 */
const HOST_CONNECT_TIMEOUT_MS = 8_000;

export class RendezvousAgent {
  /** The job whose services should be exposed now. */
  #jobId: string | null = null;
  /** What the rendezvous server last exposed for `#jobId`. */
  #endpoints: ServiceEndpoint[] = [];
  #socket?: WebSocket;
  /** The last welcome; `#welcomed` says whether it is of the connection open now. */
  #welcome?: RendezvousWelcome;
  #welcomed = false;
  #nextMsgId = 1;
  #waiting = new Map<number, (answer: Exposed | undefined) => void>();
  /** Data connections carried now, each with its job. */
  #carried = new Set<{ jobId: string; close(): void }>();
  #syncing?: Promise<void>;
  #dirty = false;
  #renewal?: ReturnType<typeof setTimeout>;
  #stopped = false;
  #wake?: () => void;

  constructor(private readonly options: RendezvousAgentOptions) {}

  /**
   * Follows the job runner's reports: a job's services are exposed once its host is ready, and
   * withdrawn (its connections cut) as soon as it starts terminating.
   */
  onJobReport(report: { job_id: string; state?: string }): void {
    if (report.state === "ready") this.#setJob(report.job_id);
    else if (
      (report.state === "terminating" || report.state === "terminated") &&
      report.job_id === this.#jobId
    ) {
      this.#setJob(null);
    }
  }

  /** Connects and stays connected until `stop`. */
  async run(): Promise<void> {
    const minBackoff = this.options.minBackoffMs ?? 500;
    let backoff = minBackoff;
    while (!this.#stopped) {
      if (await this.#connectOnce()) backoff = minBackoff;
      if (this.#stopped) return;
      const delay = Math.round(backoff * (0.5 + Math.random()));
      this.options.log.info("reconnecting to the rendezvous server", { in_ms: delay });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      backoff = Math.min(backoff * 2, this.options.maxBackoffMs ?? 15_000);
    }
  }

  /** Withdraws what is exposed (waiting at most `timeoutMs`) and disconnects. */
  async stop(timeoutMs: number): Promise<void> {
    this.#setJob(null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#syncing,
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    this.#stopped = true;
    clearTimeout(this.#renewal);
    this.#socket?.close();
    this.#wake?.();
  }

  #setJob(jobId: string | null): void {
    if (jobId === this.#jobId) return;
    this.#jobId = jobId;
    this.#endpoints = [];
    for (const carried of [...this.#carried]) if (carried.jobId !== jobId) carried.close();
    this.#requestSync();
  }

  /** One connection's life; resolves when it ends, saying whether it was welcomed. */
  async #connectOnce(): Promise<boolean> {
    const base = this.options.url.replace(/^http/, "ws").replace(/\/+$/, "");
    let grant: string;
    try {
      grant = (await this.#grant()).grant;
    } catch (error) {
      this.options.log.warn("cannot get a rendezvous grant", { error: (error as Error).message });
      return false;
    }
    if (this.#stopped) return false; // stopped while the grant was on its way
    const socket = new WebSocket(`${base}/v1/supervisors/connect`);
    this.#socket = socket;
    return await new Promise<boolean>((resolve) => {
      let welcomed = false;
      let lastHeard = performance.now();
      let keepalive: ReturnType<typeof setInterval> | undefined;
      const welcomeTimer = setTimeout(() => socket.close(), 15_000);
      const send = (message: AgentMessage) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
      };
      socket.onopen = () => {
        send({
          type: "hello",
          protocol_version: PROTOCOL_VERSION,
          tml_version: TML_VERSION,
          grant,
        });
      };
      socket.onerror = (event) => {
        if (!welcomed) {
          this.options.log.warn("cannot connect to the rendezvous server", {
            url: this.options.url,
            error: (event as ErrorEvent).message,
          });
        }
      };
      socket.onclose = (event) => {
        clearInterval(keepalive);
        clearTimeout(welcomeTimer);
        if (this.#socket === socket) {
          this.#socket = undefined;
          this.#welcomed = false;
          for (const answer of this.#waiting.values()) answer(undefined);
          this.#waiting.clear();
        }
        if (welcomed) {
          this.options.log.warn("disconnected from the rendezvous server", {
            code: event.code,
            reason: event.reason,
          });
        }
        resolve(welcomed);
      };
      socket.onmessage = (event) => {
        lastHeard = performance.now();
        const message = this.#parse(event.data);
        switch (message?.type) {
          case "welcome": {
            welcomed = true;
            clearTimeout(welcomeTimer);
            this.#welcome = message;
            this.#welcomed = true;
            this.options.log.info("connected to the rendezvous server", { url: this.options.url });
            const interval = message.keepalive_interval_ms;
            keepalive = setInterval(() => {
              if (performance.now() - lastHeard > 3 * interval) {
                this.options.log.warn("the rendezvous server is silent, reconnecting");
                socket.close();
              } else send({ type: "ping", nonce: Date.now() });
            }, interval);
            this.#requestSync();
            return;
          }
          case "refused":
            this.options.log.error("the rendezvous server refused this supervisor", {
              code: message.code,
              reason: message.message,
            });
            return;
          case "exposed":
            this.#waiting.get(message.msg_id)?.(message);
            this.#waiting.delete(message.msg_id);
            return;
          case "open":
            void this.#open(message, send);
            return;
          case "ping":
            return send({ type: "pong", nonce: message.nonce });
        }
      };
    });
  }

  #parse(data: unknown): RendezvousMessage | undefined {
    try {
      const parsed = RendezvousMessage.safeParse(JSON.parse(String(data)));
      if (parsed.success) return parsed.data;
      this.options.log.warn("ignoring an invalid rendezvous message", {
        detail: formatZodError(parsed.error, "rendezvous message").split("\n")[0],
      });
    } catch {
      this.options.log.warn("ignoring a rendezvous message that is not JSON");
    }
    return undefined;
  }

  /** A grant for the current job, reporting what is exposed of it now. */
  #grant(): ReturnType<SwitchboardClient["rendezvousGrant"]> {
    return this.options.switchboard.rendezvousGrant({
      job_id: this.#jobId,
      rendezvous_url: this.#jobId === null ? null : this.#welcome?.public_url ?? null,
      endpoints: this.#endpoints,
    });
  }

  /** Brings the server in line with `#jobId`; requests while one runs coalesce into one more. */
  #requestSync(): void {
    this.#dirty = true;
    if (this.#syncing !== undefined) return;
    this.#syncing = this.#syncWhileDirty().finally(() => {
      this.#syncing = undefined;
      if (this.#dirty && this.#welcomed) this.#requestSync();
    });
  }

  async #syncWhileDirty(): Promise<void> {
    while (this.#dirty && this.#welcomed) {
      this.#dirty = false;
      try {
        await this.#syncOnce();
      } catch (error) {
        this.options.log.warn("cannot update the rendezvous server", {
          job_id: this.#jobId,
          error: (error as Error).message,
        });
        clearTimeout(this.#renewal);
        this.#renewal = setTimeout(() => this.#requestSync(), SYNC_RETRY_MS);
        return;
      }
    }
  }

  async #syncOnce(): Promise<void> {
    const jobId = this.#jobId;
    const grant = await this.#grant();
    const services = jobId === null ? [] : this.options.services;
    const answer = await this.#expose(grant.grant, services);
    if (!answer.ok) {
      throw new Error(answer.error?.message ?? "the rendezvous server refused the exposure");
    }
    if (jobId !== this.#jobId) return; // changed meanwhile: the next round handles it
    const reported = JSON.stringify(this.#endpoints);
    this.#endpoints = answer.endpoints;
    if (jobId !== null && JSON.stringify(answer.endpoints) !== reported) {
      await this.#grant(); // reports the endpoints, for the job's status
      this.options.log.info("job services exposed", {
        job_id: jobId,
        endpoints: answer.endpoints.map((e) => `${e.name}=${e.host}:${e.public_port}`).join(","),
      });
    }
    clearTimeout(this.#renewal);
    const renewIn = (Date.parse(grant.expires_at) - Date.now()) / 2;
    this.#renewal = setTimeout(() => this.#requestSync(), Math.max(renewIn, 1_000));
  }

  #expose(grant: string, services: ExposedService[]): Promise<Exposed> {
    const socket = this.#socket;
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("not connected to the rendezvous server"));
    }
    const msgId = this.#nextMsgId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(msgId);
        reject(new Error("the rendezvous server did not answer expose in time"));
      }, EXPOSE_TIMEOUT_MS);
      this.#waiting.set(msgId, (answer) => {
        clearTimeout(timer);
        if (answer === undefined) reject(new Error("disconnected from the rendezvous server"));
        else resolve(answer);
      });
      socket.send(JSON.stringify({ type: "expose", msg_id: msgId, grant, services }));
    });
  }

  /** Brings one user connection through to the host, or says why it cannot. */
  async #open(open: Open, send: (message: AgentMessage) => void): Promise<void> {
    const fail = (message: string) => send({ type: "open_failed", ticket: open.ticket, message });
    const service = this.options.services.find((s) => s.port === open.port);
    if (open.job_id !== this.#jobId || service === undefined) {
      return fail(`port ${open.port} of job "${open.job_id}" is not exposed by this supervisor`);
    }
    const address = this.options.driver.hostAddress?.(open.job_id, open.port);
    if (address === undefined) return fail(`the job's host has no address for port ${open.port}`);
    let host: Deno.TcpConn;
    try {
      host = await connectWithin(address, HOST_CONNECT_TIMEOUT_MS);
    } catch (error) {
      return fail(`cannot reach port ${open.port} of the job's host: ${(error as Error).message}`);
    }
    const welcome = this.#welcome!;
    const dataHost = new URL(this.options.url).hostname.replace(/^\[(.*)\]$/, "$1");
    let data: Deno.Conn;
    try {
      data = welcome.data_tls
        ? await Deno.connectTls({ hostname: dataHost, port: welcome.data_port })
        : await Deno.connect({ hostname: dataHost, port: welcome.data_port });
      await writeAll(data, new TextEncoder().encode(`${DATA_PREAMBLE}${open.ticket}\n`));
    } catch (error) {
      host.close();
      this.options.log.warn("cannot open a data connection", { error: (error as Error).message });
      return;
    }
    host.setNoDelay(true);
    if ("setNoDelay" in data) (data as Deno.TcpConn).setNoDelay(true);
    const carried = {
      jobId: open.job_id,
      close: () => {
        for (const conn of [host, data]) {
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      },
    };
    this.#carried.add(carried);
    // A job that ended while this connection was being made is not carried.
    if (open.job_id !== this.#jobId) carried.close();
    await splice(data, host);
    this.#carried.delete(carried);
  }
}

/** A TCP connection, or an error once `ms` have passed (a late connection is closed). */
function connectWithin(address: HostAddress, ms: number): Promise<Deno.TcpConn> {
  const connecting = Deno.connect({ hostname: address.hostname, port: address.port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      connecting.then((conn) => conn.close(), () => {});
      reject(new Error(`no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([connecting, late]).finally(() => clearTimeout(timer));
}
