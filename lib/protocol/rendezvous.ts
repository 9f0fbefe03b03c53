/**
 * The rendezvous proxy's wire protocol (`tml rendezvous serve`), versioned with the one
 * `PROTOCOL_VERSION` (rendezvous since version 3). Three kinds of connection meet there:
 *
 * Control: each supervisor keeps one websocket (`/v1/supervisors/connect`), JSON text frames.
 * It proves who it is and which job it runs with a grant the switchboard signed
 * (`rendezvous_token.ts`), renewed before it expires and whenever its job changes.
 *
 *   supervisor                                   rendezvous
 *       | -- hello {protocol_version, grant} ------> |  refused: bad grant, too old
 *       | <------ welcome {data_port, public_url} -- |
 *       | -- expose {msg_id, grant, services} -----> |  idempotent: the whole current set
 *       | <--------- exposed {msg_id, endpoints} --- |  public ports, or an error
 *       | <--------------- open {ticket, port} ----- |  a user connection is waiting
 *       | -- open_failed {ticket, message} --------> |  only when the host port is unreachable
 *       | <-------------- ping / pong -------------> |
 *
 * Data: for each user connection the supervisor opens a fresh TCP (or TLS) connection to the
 * data port, sends `DATA_PREAMBLE` + ticket + "\n", and from then on both ends copy raw bytes.
 * One connection per user connection gives each its own flow control (TCP's), and keeps a
 * user's session alive while the control websocket reconnects.
 *
 * Users: a public TCP port per exposed service (plain bytes), or the websocket
 * `/v1/jobs/<job id>/connect?port=N` with `Authorization: Bearer <rendezvous token>` (or
 * `?token=`). On that websocket binary frames carry the bytes and text frames carry
 * `UserStreamControl`: `connected` says the host's port is reached, `eof` half-closes the
 * sender's direction, and `ack` returns flow-control credit: a sender keeps at most
 * `USER_STREAM_WINDOW` bytes unacknowledged, and a receiver acknowledges bytes once it has
 * passed them on. A refused user websocket is closed, instead of `connected`, with one of
 * `UserCloseCode` and a reason saying why. A user may send before `connected`.
 */
import { z } from "zod";
import { ServiceEndpoint } from "./api.ts";
import { Uuid } from "./common.ts";

/** The first protocol version that has the rendezvous proxy. */
export const RENDEZVOUS_SINCE_VERSION = 3;

const MsgId = z.number().int().nonnegative();
const Port = z.number().int().min(1).max(65535);
/** A signed grant or token (`rendezvous_token.ts`); its contents are checked when verified. */
const SignedToken = z.string().min(1).max(4096);

/** A one-time ticket that pairs a supervisor's data connection with a user connection. */
export const Ticket = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "expected 32 bytes in base64url");
export type Ticket = z.infer<typeof Ticket>;

/** What a supervisor exposes for its job: a name and the port on the host. */
export const ExposedService = z.strictObject({
  name: ServiceEndpoint.shape.name,
  port: Port,
});
export type ExposedService = z.infer<typeof ExposedService>;

const Ping = z.strictObject({ type: z.literal("ping"), nonce: z.number().int() });
const Pong = z.strictObject({ type: z.literal("pong"), nonce: z.number().int() });

// ---------------------------------------------------------------------------------------------
// Supervisor -> rendezvous

export const AgentHello = z.strictObject({
  type: z.literal("hello"),
  protocol_version: z.number().int().nonnegative(),
  tml_version: z.string().max(64),
  grant: SignedToken,
});
export type AgentHello = z.infer<typeof AgentHello>;

export const Expose = z.strictObject({
  type: z.literal("expose"),
  msg_id: MsgId,
  /** A fresh grant; the services must belong to the job it names (none when it names none). */
  grant: SignedToken,
  services: z.array(ExposedService).max(16),
});
export type Expose = z.infer<typeof Expose>;

export const OpenFailed = z.strictObject({
  type: z.literal("open_failed"),
  ticket: Ticket,
  message: z.string().max(1024),
});
export type OpenFailed = z.infer<typeof OpenFailed>;

export const AgentMessage = z.discriminatedUnion("type", [
  AgentHello,
  Expose,
  OpenFailed,
  Ping,
  Pong,
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

// ---------------------------------------------------------------------------------------------
// Rendezvous -> supervisor

export const RendezvousWelcome = z.strictObject({
  type: z.literal("welcome"),
  protocol_version: z.number().int(),
  /** The TCP port supervisors open data connections to, on the rendezvous URL's host. */
  data_port: Port,
  /** Whether the data port speaks TLS. */
  data_tls: z.boolean(),
  /** The websocket base URL users connect to; reported to the switchboard for its users. */
  public_url: z.string().max(2048),
  keepalive_interval_ms: z.number().int().positive(),
});
export type RendezvousWelcome = z.infer<typeof RendezvousWelcome>;

export const RendezvousRefused = z.strictObject({
  type: z.literal("refused"),
  code: z.string(),
  message: z.string(),
});
export type RendezvousRefused = z.infer<typeof RendezvousRefused>;

export const Exposed = z.strictObject({
  type: z.literal("exposed"),
  msg_id: MsgId,
  ok: z.boolean(),
  job_id: Uuid.nullable(),
  endpoints: z.array(ServiceEndpoint),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type Exposed = z.infer<typeof Exposed>;

export const Open = z.strictObject({
  type: z.literal("open"),
  ticket: Ticket,
  job_id: Uuid,
  port: Port,
});
export type Open = z.infer<typeof Open>;

export const RendezvousMessage = z.discriminatedUnion("type", [
  RendezvousWelcome,
  RendezvousRefused,
  Exposed,
  Open,
  Ping,
  Pong,
]);
export type RendezvousMessage = z.infer<typeof RendezvousMessage>;

/** Largest control message either side accepts, in bytes. */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Data connections and the user websocket

/** What a data connection starts with, before the ticket and a newline. */
export const DATA_PREAMBLE = "TMLD1 ";
/** Bytes of preamble + ticket + "\n". */
export const DATA_HEADER_BYTES = DATA_PREAMBLE.length + 43 + 1;

/** Control frames (text) of the user websocket. */
export const UserStreamControl = z.discriminatedUnion("type", [
  /** From the server, once: the host's port is reached (a refusal closes instead). */
  z.strictObject({ type: z.literal("connected") }),
  /** The sender passed on `bytes` more bytes: the other side may send that much more. */
  z.strictObject({ type: z.literal("ack"), bytes: z.number().int().positive() }),
  /** The sender will send no more bytes (a TCP half-close). */
  z.strictObject({ type: z.literal("eof") }),
]);
export type UserStreamControl = z.infer<typeof UserStreamControl>;

/** Bytes a user-websocket sender may have unacknowledged. */
export const USER_STREAM_WINDOW = 4 * 1024 * 1024;
/** Largest binary frame on the user websocket. */
export const MAX_USER_FRAME_BYTES = 1024 * 1024;

/** Query of the user websocket: the port on the job's host, and optionally the token. */
export const UserConnectQuery = z.strictObject({
  port: z.coerce.number().int().min(1).max(65535),
  token: SignedToken.optional(),
});
export type UserConnectQuery = z.infer<typeof UserConnectQuery>;

/**
 * Close codes of a refused or ended user websocket (4000-4999 are the application's). The
 * reason says why in words, `Cannot connect to job "…": …`.
 */
export const UserCloseCode = {
  /** The request itself is malformed (bad port, bad path). */
  badRequest: 4400,
  /** No token, or one that is malformed, forged or expired. */
  unauthorized: 4401,
  /** A valid token for another job. */
  forbidden: 4403,
  /** The job exposes no such service (not running, ended, or never exposed that port). */
  notFound: 4404,
  /** The job has as many connections as the server allows. */
  tooManyConnections: 4429,
  /** The supervisor could not reach the host's port. */
  hostUnreachable: 4502,
  /** The job's supervisor is reconnecting or did not answer in time. */
  unavailable: 4503,
  /** The connection saw no bytes for the idle timeout. */
  idle: 4408,
} as const;

// ---------------------------------------------------------------------------------------------
// Metrics (`GET /metrics` of the rendezvous server)

/** Connections and bytes of one job's services, or of all jobs since the server started. */
export const Traffic = z.object({
  connections_open: z.number().int(),
  connections_total: z.number().int(),
  /** Connections refused for the connection limit, or because the host was unreachable. */
  connections_refused: z.number().int(),
  bytes_to_host: z.number().int(),
  bytes_from_host: z.number().int(),
});
export type Traffic = z.infer<typeof Traffic>;

export const RendezvousMetrics = z.object({
  supervisors_connected: z.number().int(),
  /** Jobs exposed now, by job id. */
  jobs: z.record(
    Uuid,
    Traffic.extend({
      supervisor_id: Uuid,
      supervisor_connected: z.boolean(),
      endpoints: z.array(ServiceEndpoint),
    }),
  ),
  /** Every connection since the server started, jobs that have ended included. */
  totals: Traffic,
});
export type RendezvousMetrics = z.infer<typeof RendezvousMetrics>;
