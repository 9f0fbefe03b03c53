/**
 * The switchboard-supervisor websocket protocol (`GET /api/v1/supervisors/connect`, upgraded).
 * The supervisor authenticates at upgrade with `Authorization: Bearer <supervisor token>`,
 * then sends `hello` listing the jobs it holds, also after every reconnect, so the switchboard
 * can reconcile after either side restarts.
 *
 *   supervisor                               switchboard
 *       | -- upgrade (bearer token) ----------> |  401 before upgrade if the token is bad
 *       | -- hello {protocol_version, jobs} --> |
 *       | <------------ welcome | refused ----- |  refused names both protocol versions
 *       | <-- start_job / stop_job {msg_id} --- |  each acknowledged by the supervisor
 *       | -- job_update {msg_id} -------------> |  each acknowledged by the switchboard
 *       | <------------- ping / pong ---------> |  either side, every keepalive interval
 *
 * Every command is idempotent: a repeated `start_job` for a held job, a `stop_job` for a job
 * already gone, or a repeated `job_update` are acknowledged and change nothing.
 */
import { z } from "zod";
import { ExecutionState, ExitStatus } from "../lifecycle.ts";
import { ImageId, JobParameters, SshPublicKey, Uuid, WorkloadCommand } from "./common.ts";

/** Identifies a command so its acknowledgement can be matched; unique per sender and connection. */
const MsgId = z.number().int().nonnegative();

/** The states a supervisor may report (the switchboard owns `queued` and `scheduled`). */
export const SupervisorReportedState = ExecutionState.extract([
  "initializing",
  "ready",
  "terminating",
  "terminated",
]);
export type SupervisorReportedState = z.infer<typeof SupervisorReportedState>;

/** What a supervisor needs to run a job; secret parameter values are included only here. */
export const JobSpec = z.object({
  job_id: Uuid,
  image_id: ImageId,
  parameters: JobParameters,
  ssh_keys: z.array(SshPublicKey),
  workload: WorkloadCommand.nullable(),
  timeout_ms: z.number().int().positive(),
});
export type JobSpec = z.infer<typeof JobSpec>;

export const HeldJob = z.object({
  job_id: Uuid,
  state: SupervisorReportedState,
  sub_state: z.string().max(256).nullable().default(null),
});
export type HeldJob = z.infer<typeof HeldJob>;

const Ack = z.strictObject({
  type: z.literal("ack"),
  msg_id: MsgId,
  ok: z.boolean(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
const Ping = z.strictObject({ type: z.literal("ping"), nonce: z.number().int() });
const Pong = z.strictObject({ type: z.literal("pong"), nonce: z.number().int() });

// ---------------------------------------------------------------------------------------------
// Supervisor -> switchboard

export const SupervisorHello = z.strictObject({
  type: z.literal("hello"),
  protocol_version: z.number().int().nonnegative(),
  tml_version: z.string().max(64),
  supervisor_id: Uuid,
  /** The kind of host this supervisor drives, for display. */
  driver: z.string().max(64),
  /**
   * Tags the supervisor advertises (from its config); when given they replace the tags it was
   * registered with. `supervisor:<id>` is always implied.
   */
  tags: z.array(z.string().regex(/^[A-Za-z0-9_.:\/=+@-]{1,128}$/)).max(64).optional(),
  jobs: z.array(HeldJob).max(16),
});
export type SupervisorHello = z.infer<typeof SupervisorHello>;

export const JobUpdate = z.strictObject({
  type: z.literal("job_update"),
  msg_id: MsgId,
  job_id: Uuid,
  state: SupervisorReportedState.optional(),
  sub_state: z.string().max(256).nullable().optional(),
  /** Applied before `state`, so `terminated` with a status lands atomically. */
  exit_status: ExitStatus.optional(),
  message: z.string().max(4096).optional(),
});
export type JobUpdate = z.infer<typeof JobUpdate>;

/** Largest console chunk, in bytes before base64. */
export const MAX_CONSOLE_CHUNK_BYTES = 256 * 1024;

export const ConsoleOutput = z.strictObject({
  type: z.literal("console_output"),
  msg_id: MsgId,
  job_id: Uuid,
  /** Byte offset of `data` in the job's console stream, so a resent chunk is harmless. */
  offset: z.number().int().nonnegative(),
  /** The bytes, base64. */
  data: z.base64().max(Math.ceil(MAX_CONSOLE_CHUNK_BYTES / 3) * 4),
});
export type ConsoleOutput = z.infer<typeof ConsoleOutput>;

export const SupervisorMessage = z.discriminatedUnion("type", [
  SupervisorHello,
  JobUpdate,
  ConsoleOutput,
  Ack,
  Ping,
  Pong,
]);
export type SupervisorMessage = z.infer<typeof SupervisorMessage>;

// ---------------------------------------------------------------------------------------------
// Switchboard -> supervisor

export const Welcome = z.strictObject({
  type: z.literal("welcome"),
  protocol_version: z.number().int(),
  supervisor_id: Uuid,
  keepalive_interval_ms: z.number().int().positive(),
});
export type Welcome = z.infer<typeof Welcome>;

export const Refused = z.strictObject({
  type: z.literal("refused"),
  code: z.string(),
  message: z.string(),
});
export type Refused = z.infer<typeof Refused>;

export const StartJob = z.strictObject({
  type: z.literal("start_job"),
  msg_id: MsgId,
  job: JobSpec,
});
export type StartJob = z.infer<typeof StartJob>;

export const StopReason = z.enum(["canceled", "timeout", "superseded"]);
export type StopReason = z.infer<typeof StopReason>;

export const StopJob = z.strictObject({
  type: z.literal("stop_job"),
  msg_id: MsgId,
  job_id: Uuid,
  reason: StopReason,
});
export type StopJob = z.infer<typeof StopJob>;

export const SwitchboardMessage = z.discriminatedUnion("type", [
  Welcome,
  Refused,
  StartJob,
  StopJob,
  Ack,
  Ping,
  Pong,
]);
export type SwitchboardMessage = z.infer<typeof SwitchboardMessage>;

export type AckMessage = z.infer<typeof Ack>;

/** Largest websocket message either side accepts, in bytes. */
export const MAX_SUPERVISOR_MESSAGE_BYTES = 4 * 1024 * 1024;
