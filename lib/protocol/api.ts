/**
 * The switchboard's REST API (`/api/v1`) as zod schemas: the only definition of its request and
 * response bodies. The server validates requests with them, the OpenAPI document is generated
 * from them, and the typed client in `lib/client/` parses responses with them.
 */
import { z } from "zod";
import { ExecutionState, ExitStatus } from "../lifecycle.ts";
import { Duration } from "../duration.ts";
import {
  ImageId,
  JobParameter,
  JobParameters,
  ParameterName,
  SshPublicKey,
  Uuid,
  WorkloadCommand,
} from "./common.ts";

// ---------------------------------------------------------------------------------------------
// Errors

export const ApiErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;

// ---------------------------------------------------------------------------------------------
// Permissions

/**
 * Treadmill's permission vocabulary. `admin` grants everything; `push_image` (tml's addition)
 * allows uploads to an image store that trusts this switchboard. The per-id permissions also
 * accept `*` as the id.
 */
export const Permission = z.string().regex(
  /^(admin|submit_job|list_jobs|list_supervisors|push_image|(read_job_status|stop_job|read_supervisor_status|run_job_on_supervisor):([0-9a-f-]{36}|\*))$/,
  'expected a permission such as "submit_job" or "run_job_on_supervisor:<supervisor id>"',
);
export type Permission = z.infer<typeof Permission>;

// ---------------------------------------------------------------------------------------------
// Tokens and identity

export const LoginRequest = z.strictObject({
  /** A user's name or email. */
  user: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
  /** Token lifetime; default 7 days, at most 365 days. */
  expires_in: Duration.optional(),
});
export type LoginRequest = z.infer<typeof LoginRequest>;

export const TokenCreated = z.object({
  token_id: Uuid,
  /** The secret token (base64 of 128 random bytes). Shown once; only its SHA-256 is stored. */
  token: z.string(),
  user_id: Uuid,
  expires_at: z.iso.datetime(),
  /** The token's own permission subset, or null when it carries all of its owner's. */
  permissions: z.array(Permission).nullable(),
});
export type TokenCreated = z.infer<typeof TokenCreated>;

export const CreateTokenRequest = z.strictObject({
  expires_in: Duration.optional(),
  /** A subset of the owner's permissions; omitted means all of them. */
  permissions: z.array(Permission).max(256).optional(),
  description: z.string().max(256).optional(),
});
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>;

export const TokenInfo = z.object({
  token_id: Uuid,
  description: z.string().nullable(),
  created_at: z.iso.datetime(),
  expires_at: z.iso.datetime(),
  revoked_at: z.iso.datetime().nullable(),
  permissions: z.array(Permission).nullable(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;

export const TokenList = z.object({ tokens: z.array(TokenInfo) });
export type TokenList = z.infer<typeof TokenList>;

export const ListTokensQuery = z.strictObject({
  /** Another user's tokens; needs `admin`. Default: the caller's own. */
  user_id: Uuid.optional(),
});
export type ListTokensQuery = z.infer<typeof ListTokensQuery>;

export const WhoAmI = z.object({
  user_id: Uuid,
  name: z.string(),
  email: z.string(),
  token_id: Uuid,
  /** The effective permissions of the token used for this request. */
  permissions: z.array(Permission),
});
export type WhoAmI = z.infer<typeof WhoAmI>;

// ---------------------------------------------------------------------------------------------
// Jobs

export const EnqueueJobRequest = z.strictObject({
  image_id: ImageId,
  /** A tag filter expression; empty matches every supervisor the owner may use. */
  tag_config: z.string().max(4096).default(""),
  parameters: JobParameters.default({}),
  ssh_keys: z.array(SshPublicKey).max(64).default([]),
  /** How many times the job is re-enqueued after an infrastructure failure. */
  restart_count: z.number().int().min(0).max(100).default(0),
  /** Maximum run time once dispatched to a supervisor; default 1 hour. */
  timeout: Duration.optional(),
  /** Maximum time in the queue before `queue_timeout`; default 1 day. */
  queue_timeout: Duration.optional(),
  /** A command the puppet runs in the host; its exit code becomes the exit status. */
  workload: WorkloadCommand.nullable().default(null),
});
export type EnqueueJobRequest = z.infer<typeof EnqueueJobRequest>;

/** A parameter as the API returns it: secret values are never returned. */
export const JobParameterView = z.object({
  value: z.string().nullable(),
  secret: z.boolean(),
});
export type JobParameterView = z.infer<typeof JobParameterView>;

export const SshEndpoint = z.object({ host: z.string(), port: z.number().int() });
export type SshEndpoint = z.infer<typeof SshEndpoint>;

export const JobView = z.object({
  job_id: Uuid,
  owner_id: Uuid,
  image_id: ImageId,
  tag_config: z.string(),
  parameters: z.record(ParameterName, JobParameterView),
  ssh_keys: z.array(z.string()),
  workload: z.string().nullable(),
  restart_count: z.number().int(),
  restarted_from: Uuid.nullable(),
  restarted_as: Uuid.nullable(),
  timeout_ms: z.number().int(),
  queue_timeout_ms: z.number().int(),
  state: ExecutionState,
  sub_state: z.string().nullable(),
  exit_status: ExitStatus.nullable(),
  exit_message: z.string().nullable(),
  supervisor_id: Uuid.nullable(),
  cancel_requested: z.boolean(),
  enqueued_at: z.iso.datetime(),
  dispatched_at: z.iso.datetime().nullable(),
  terminated_at: z.iso.datetime().nullable(),
  ssh_endpoints: z.array(SshEndpoint),
});
export type JobView = z.infer<typeof JobView>;

export const ListJobsQuery = z.strictObject({
  state: z.union([ExecutionState, z.literal("active")]).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** Opaque cursor from a previous page's `next_cursor`. */
  cursor: z.string().max(256).optional(),
});
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

export const JobList = z.object({
  jobs: z.array(JobView),
  next_cursor: z.string().nullable(),
});
export type JobList = z.infer<typeof JobList>;

export const WaitJobQuery = z.strictObject({
  /** How long to wait for the job to terminate; default 30 s, capped by the switchboard. */
  timeout: Duration.default(30_000),
});
export type WaitJobQuery = z.infer<typeof WaitJobQuery>;

export const JobLogsQuery = z.strictObject({
  /** Byte offset to start from: the `X-Tml-Log-Next-Offset` of an earlier answer. */
  offset: z.coerce.number().int().nonnegative().default(0),
  /** Keep the answer open and stream new output until the job has terminated. */
  follow: z.enum(["true", "false", "1", "0"]).default("false")
    .transform((value) => value === "true" || value === "1"),
});
export type JobLogsQuery = z.infer<typeof JobLogsQuery>;

export const JobEventActor = z.enum(["switchboard", "supervisor", "user"]);

/** One entry of a job's history: a state change or an exit-status change. */
export const JobEvent = z.object({
  at: z.iso.datetime(),
  actor: JobEventActor,
  kind: z.enum(["state", "exit_status"]),
  state: ExecutionState.nullable(),
  sub_state: z.string().nullable(),
  exit_status: ExitStatus.nullable(),
  message: z.string().nullable(),
});
export type JobEvent = z.infer<typeof JobEvent>;

export const JobHistory = z.object({ job_id: Uuid, events: z.array(JobEvent) });
export type JobHistory = z.infer<typeof JobHistory>;

// ---------------------------------------------------------------------------------------------
// Supervisors

export const SupervisorView = z.object({
  supervisor_id: Uuid,
  name: z.string(),
  tags: z.array(z.string()),
  connected: z.boolean(),
  /** The job the supervisor holds, if any. */
  current_job_id: Uuid.nullable(),
  last_seen_at: z.iso.datetime().nullable(),
});
export type SupervisorView = z.infer<typeof SupervisorView>;

export const SupervisorList = z.object({ supervisors: z.array(SupervisorView) });
export type SupervisorList = z.infer<typeof SupervisorList>;

export { JobParameter };

// ---------------------------------------------------------------------------------------------
// Rendezvous (lib/protocol/rendezvous.ts has the rendezvous server's own protocol)

/** A TCP port number. */
const Port = z.number().int().min(1).max(65535);

/** One service of a job as a rendezvous server exposes it on a public TCP port. */
export const ServiceEndpoint = z.strictObject({
  /** The service's name from the supervisor's config; `ssh` is listed in `ssh_endpoints`. */
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "expected a lowercase name such as ssh"),
  /** The port on the job's host. */
  port: Port,
  /** Where users reach it: the rendezvous server's public host and the port it allocated. */
  host: z.string().min(1).max(253),
  public_port: Port,
});
export type ServiceEndpoint = z.infer<typeof ServiceEndpoint>;

/**
 * `POST /rendezvous/grant`, called by a supervisor with its own token for the job it runs
 * (`job_id` null: none), with what a rendezvous server exposes of it now; the switchboard lists
 * those endpoints in the job's view. The answer is a grant the rendezvous server checks.
 */
export const RendezvousGrantRequest = z.strictObject({
  job_id: Uuid.nullable(),
  /** The rendezvous server's websocket base URL for users, as it told the supervisor. */
  rendezvous_url: z.url().max(2048).nullable().default(null),
  endpoints: z.array(ServiceEndpoint).max(16).default([]),
});
export type RendezvousGrantRequest = z.infer<typeof RendezvousGrantRequest>;

export const RendezvousGrant = z.object({
  /** Signed; proves to a rendezvous server which supervisor this is and which job it runs. */
  grant: z.string(),
  supervisor_id: Uuid,
  job_id: Uuid.nullable(),
  expires_at: z.iso.datetime(),
});
export type RendezvousGrant = z.infer<typeof RendezvousGrant>;

/** `POST /jobs/{id}/rendezvous-token` (job owner and admins): how long the token lasts. */
export const RendezvousTokenRequest = z.strictObject({
  /** Default 10 minutes, at most 1 hour; a connection opened in time outlives its token. */
  expires_in: Duration.optional(),
});
export type RendezvousTokenRequest = z.infer<typeof RendezvousTokenRequest>;

/** A short-lived token that reaches one job's host, and where to use it. */
export const RendezvousTokenCreated = z.object({
  token: z.string(),
  job_id: Uuid,
  expires_at: z.iso.datetime(),
  /** The rendezvous server's websocket base URL, e.g. `wss://rdv.example:7300`. */
  rendezvous_url: z.string(),
  endpoints: z.array(ServiceEndpoint),
});
export type RendezvousTokenCreated = z.infer<typeof RendezvousTokenCreated>;

/** One key the switchboard signs grants and tokens with: Ed25519, raw 32 bytes in base64url. */
export const RendezvousPublicKey = z.object({
  kid: z.string().min(1).max(64),
  alg: z.literal("Ed25519"),
  public_key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "expected 32 bytes in base64url"),
});
export type RendezvousPublicKey = z.infer<typeof RendezvousPublicKey>;

/** `GET /rendezvous/keys` (public): the keys rendezvous servers verify grants and tokens with. */
export const RendezvousKeys = z.object({ keys: z.array(RendezvousPublicKey).max(16) });
export type RendezvousKeys = z.infer<typeof RendezvousKeys>;
