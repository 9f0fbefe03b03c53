/**
 * One supervisor's control websocket on the rendezvous server (`lib/protocol/rendezvous.ts`):
 * a hello with a grant the switchboard signed, then `expose` (each with a fresh grant), answers
 * to `open`, and pings. Whatever a supervisor exposes must belong to the job its grant names,
 * which is how a supervisor can only expose services of the job it is running. A peer that
 * sends garbage, a bad grant or nothing at all is closed with a reason saying why.
 */
import type { Logger } from "../../lib/log.ts";
import type { ServiceEndpoint } from "../../lib/protocol/api.ts";
import {
  type AgentMessage,
  AgentMessage as AgentMessageSchema,
  type Expose,
  MAX_CONTROL_MESSAGE_BYTES,
  RENDEZVOUS_SINCE_VERSION,
  type RendezvousMessage,
  type RendezvousWelcome,
} from "../../lib/protocol/rendezvous.ts";
import { type GrantClaims, TokenError } from "../../lib/protocol/rendezvous_token.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { truncateReason } from "../../lib/net/ws_bytes.ts";
import { formatZodError } from "../../lib/zod_issues.ts";
import { RendezvousError } from "./errors.ts";
import type { KeyRing } from "./key_ring.ts";
import type { ControlLink, ServiceTable } from "./service_table.ts";
import type { Tickets } from "./tickets.ts";

export interface ControlSessionDeps {
  keys: KeyRing;
  table: ServiceTable;
  tickets: Tickets;
  log: Logger;
  /** What the welcome tells the supervisor. */
  welcome: Omit<RendezvousWelcome, "type" | "protocol_version">;
  /** How long a new connection has to say hello. */
  helloTimeoutMs?: number;
}

/** Close codes of a control websocket the server ends. */
const CLOSE_PROTOCOL_ERROR = 1008;
const CLOSE_REFUSED = 4003;
const CLOSE_REPLACED = 4009;
const CLOSE_SILENT = 4008;

export class ControlSession implements ControlLink {
  #supervisorId?: string;
  #jobId: string | null = null;
  #lastHeard = performance.now();
  #timer?: ReturnType<typeof setInterval>;
  /** Messages are handled one at a time, in order: each may await a grant check. */
  #queue: Promise<void> = Promise.resolve();

  constructor(private readonly socket: WebSocket, private readonly deps: ControlSessionDeps) {
    const helloBy = performance.now() + (deps.helloTimeoutMs ?? 10_000);
    const keepalive = deps.welcome.keepalive_interval_ms;
    socket.onmessage = (event) => {
      this.#lastHeard = performance.now();
      this.#queue = this.#queue.then(() => this.#receive(event.data));
    };
    socket.onerror = () => {};
    socket.onclose = () => {
      clearInterval(this.#timer);
      if (this.#supervisorId !== undefined) {
        deps.table.detach(this);
        deps.log.info("supervisor disconnected", { supervisor_id: this.#supervisorId });
      }
    };
    this.#timer = setInterval(() => {
      if (this.#supervisorId === undefined && performance.now() > helloBy) {
        this.close("Cannot accept supervisor: no hello in time", CLOSE_PROTOCOL_ERROR);
      } else if (performance.now() - this.#lastHeard > 3 * keepalive) {
        this.close("Cannot keep supervisor connection: it went silent", CLOSE_SILENT);
      }
    }, Math.min(keepalive, deps.helloTimeoutMs ?? 10_000));
  }

  get supervisorId(): string {
    return this.#supervisorId ?? "";
  }

  open(ticket: string, jobId: string, port: number): void {
    this.#send({ type: "open", ticket, job_id: jobId, port });
  }

  close(reason: string, code = CLOSE_REPLACED): void {
    try {
      this.socket.close(code, truncateReason(reason));
    } catch {
      // Already closing.
    }
  }

  async #receive(data: unknown): Promise<void> {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    const message = this.#parse(data);
    if (message === undefined) return;
    if (this.#supervisorId === undefined && message.type !== "hello") {
      return this.close("Cannot accept message: expected hello first", CLOSE_PROTOCOL_ERROR);
    }
    switch (message.type) {
      case "hello":
        return await this.#hello(message.protocol_version, message.grant);
      case "expose":
        return await this.#expose(message);
      case "open_failed":
        if (this.#jobId !== null) {
          this.deps.tickets.fail(
            message.ticket,
            this.#jobId,
            new RendezvousError("host_unreachable", `Cannot connect: ${message.message}`),
          );
        }
        return;
      case "ping":
        return this.#send({ type: "pong", nonce: message.nonce });
      case "pong":
        return;
    }
  }

  async #hello(version: number, grant: string): Promise<void> {
    if (this.#supervisorId !== undefined) {
      return this.close(
        "Cannot accept hello: this connection already said hello",
        CLOSE_PROTOCOL_ERROR,
      );
    }
    if (version < RENDEZVOUS_SINCE_VERSION) {
      return this.#refuse(
        "protocol_version",
        `Cannot accept supervisor: it speaks protocol version ${version}, this rendezvous server ` +
          `needs at least ${RENDEZVOUS_SINCE_VERSION} (it speaks ${PROTOCOL_VERSION}); upgrade the supervisor`,
      );
    }
    let claims: GrantClaims;
    try {
      claims = await this.#verifyGrant(grant);
    } catch (error) {
      if (!(error instanceof TokenError || error instanceof RendezvousError)) throw error;
      return this.#refuse(error.code, `Cannot accept supervisor: ${error.message}`);
    }
    this.#supervisorId = claims.supervisor_id;
    this.#jobId = claims.job_id;
    this.deps.table.attach(this, claims.job_id);
    this.#send({ type: "welcome", protocol_version: PROTOCOL_VERSION, ...this.deps.welcome });
    this.deps.log.info("supervisor connected", {
      supervisor_id: claims.supervisor_id,
      job_id: claims.job_id,
    });
  }

  async #expose(message: Expose): Promise<void> {
    const reply = (
      jobId: string | null,
      endpoints: ServiceEndpoint[],
      error?: TokenError | RendezvousError,
    ) =>
      this.#send({
        type: "exposed",
        msg_id: message.msg_id,
        ok: error === undefined,
        job_id: jobId,
        endpoints,
        ...(error === undefined ? {} : { error: { code: error.code, message: error.message } }),
      });
    let claims: GrantClaims;
    try {
      claims = await this.#verifyGrant(message.grant);
      if (claims.supervisor_id !== this.#supervisorId) {
        throw new RendezvousError(
          "forbidden",
          `Cannot expose services: the grant belongs to supervisor "${claims.supervisor_id}"`,
        );
      }
      if (claims.job_id === null && message.services.length > 0) {
        throw new RendezvousError("forbidden", "Cannot expose services: the grant names no job");
      }
    } catch (error) {
      if (!(error instanceof TokenError || error instanceof RendezvousError)) throw error;
      return reply(null, [], error);
    }
    this.#jobId = claims.job_id;
    try {
      reply(
        claims.job_id,
        this.deps.table.expose(this, claims.job_id, message.services, claims.exp),
      );
    } catch (error) {
      if (!(error instanceof RendezvousError)) throw error;
      reply(claims.job_id, [], error);
    }
  }

  async #verifyGrant(grant: string): Promise<GrantClaims> {
    const claims = await this.deps.keys.verify(grant);
    if (claims.typ !== "rendezvous_grant") {
      throw new RendezvousError("unauthorized", "Cannot verify grant: it is a user token");
    }
    return claims;
  }

  #parse(data: unknown): AgentMessage | undefined {
    if (typeof data !== "string" || data.length > MAX_CONTROL_MESSAGE_BYTES) {
      this.close(
        "Cannot read message: expected a JSON text frame of at most 64 KiB",
        CLOSE_PROTOCOL_ERROR,
      );
      return undefined;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      this.close("Cannot read message: not JSON", CLOSE_PROTOCOL_ERROR);
      return undefined;
    }
    const parsed = AgentMessageSchema.safeParse(raw);
    if (parsed.success) return parsed.data;
    const detail = formatZodError(parsed.error, "message").split("\n")[0];
    this.close(`Cannot read message: ${detail}`, CLOSE_PROTOCOL_ERROR);
    return undefined;
  }

  #refuse(code: string, message: string): void {
    this.deps.log.warn("refusing supervisor", { code, reason: message });
    this.#send({ type: "refused", code, message });
    this.close(message, CLOSE_REFUSED);
  }

  #send(message: RendezvousMessage): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
