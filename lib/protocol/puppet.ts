/**
 * The supervisor-puppet channel: framed JSON (`framed_json.ts`, at most 1 MiB a frame) over a
 * byte stream, a virtio-serial port for VMs or TCP for hosts on a network. The puppet speaks
 * first, authenticating with the per-job secret it got out of band; the supervisor answers with
 * the job (parameters with their values, SSH keys, workload) or refuses.
 *
 *   puppet                                          supervisor
 *     | -- auth {protocol_version, secret} ---------> |
 *     | <------------------- auth_ok {job, …} | auth_failed {message}
 *     | -- ready -----------------------------------> |  files written, host usable
 *     | -- workload_output {stream, offset, data} --> |  for the job's console log
 *     | -- workload_finished {outcome, exit_code?} -> |
 *     | -- terminate_request -----------------------> |  `tml puppet terminate`
 *     | -- heartbeat -------------------------------> |  every heartbeat_interval_ms,
 *     | <------------------------------- heartbeat -- |  answered, so both notice silence
 *     | <-------------------------- shutdown {reason} |
 *
 * Warm start: a supervisor may take a snapshot of a VM whose puppet has sent `auth` and awaits
 * the answer (a template boot with a throwaway secret), and resume each job's VM from it. The
 * resumed puppet is still awaiting that answer, so the supervisor speaks first:
 *
 *     | <--------------- restored {time_ms, entropy} |  the clock and random pool are stale
 *     | -- auth {protocol_version, secret} ---------> |  the secret read again (the job's own)
 *     | <------------------- auth_ok {job, …} | auth_failed {message}
 *
 * A puppet that restarts, or loses its connection, connects again and authenticates with the
 * same secret; the supervisor replaces the old connection. Everything the puppet says is
 * idempotent so it can repeat it after a reconnect: `ready` again, `workload_finished` again
 * (the first one decides), and output from the offsets `auth_ok` says the supervisor already
 * has. The puppet's local control socket (`tml puppet finish|terminate`) uses the same framing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { JobParameters, SshPublicKey, Uuid, WorkloadCommand } from "./common.ts";

export const MAX_PUPPET_FRAME_BYTES = 1024 * 1024;
/** Largest `workload_output` chunk, in bytes before base64. */
export const MAX_WORKLOAD_OUTPUT_BYTES = 64 * 1024;

/**
 * Names a VM's supervisor gives the puppet's channel and secret, for auto-discovery inside the
 * guest: a virtio-serial port (`/sys/class/virtio-ports/*\/name`) and a QEMU `fw_cfg` file
 * (`/sys/firmware/qemu_fw_cfg/by_name/<name>/raw`).
 */
export const PUPPET_VIRTIO_PORT_NAME = "org.tml.puppet.0";
export const PUPPET_FW_CFG_SECRET = "opt/org.tml/puppet-secret";

export const PuppetJob = z.strictObject({
  job_id: Uuid,
  parameters: JobParameters,
  ssh_keys: z.array(SshPublicKey),
  workload: WorkloadCommand.nullable(),
});
export type PuppetJob = z.infer<typeof PuppetJob>;

export const WorkloadOutcome = z.enum(["success", "error", "unknown"]);
export type WorkloadOutcome = z.infer<typeof WorkloadOutcome>;

export const WorkloadStream = z.enum(["stdout", "stderr"]);
export type WorkloadStream = z.infer<typeof WorkloadStream>;

// ---------------------------------------------------------------------------------------------
// Puppet -> supervisor

export const PuppetAuth = z.strictObject({
  type: z.literal("auth"),
  protocol_version: z.number().int().nonnegative(),
  secret: z.string().min(1).max(256),
});
export type PuppetAuth = z.infer<typeof PuppetAuth>;

export const PuppetReady = z.strictObject({ type: z.literal("ready") });

export const WorkloadOutput = z.strictObject({
  type: z.literal("workload_output"),
  stream: WorkloadStream,
  /** Byte offset of `data` in its stream, so output repeated after a reconnect is dropped. */
  offset: z.number().int().nonnegative(),
  /** The bytes, base64 (a workload may print anything). */
  data: z.base64().max(Math.ceil(MAX_WORKLOAD_OUTPUT_BYTES / 3) * 4),
});
export type WorkloadOutput = z.infer<typeof WorkloadOutput>;

export const WorkloadFinished = z.strictObject({
  type: z.literal("workload_finished"),
  outcome: WorkloadOutcome,
  exit_code: z.number().int().optional(),
  message: z.string().max(4096).optional(),
});
export type WorkloadFinished = z.infer<typeof WorkloadFinished>;

export const TerminateRequest = z.strictObject({ type: z.literal("terminate_request") });
export type TerminateRequest = z.infer<typeof TerminateRequest>;

const Heartbeat = z.strictObject({ type: z.literal("heartbeat") });

export const PuppetMessage = z.discriminatedUnion("type", [
  PuppetAuth,
  PuppetReady,
  WorkloadOutput,
  WorkloadFinished,
  TerminateRequest,
  Heartbeat,
]);
export type PuppetMessage = z.infer<typeof PuppetMessage>;

// ---------------------------------------------------------------------------------------------
// Supervisor -> puppet

export const AuthOk = z.strictObject({
  type: z.literal("auth_ok"),
  job: PuppetJob,
  /** How often the puppet sends a heartbeat; the supervisor gives up after a few missed. */
  heartbeat_interval_ms: z.number().int().positive(),
  /** Bytes of each output stream the supervisor already has; the puppet resumes there. */
  output_offsets: z.strictObject({
    stdout: z.number().int().nonnegative(),
    stderr: z.number().int().nonnegative(),
  }),
});
export type AuthOk = z.infer<typeof AuthOk>;

export const AuthFailed = z.strictObject({
  type: z.literal("auth_failed"),
  message: z.string().max(4096),
});

export const Shutdown = z.strictObject({
  type: z.literal("shutdown"),
  reason: z.string().max(256),
});

/**
 * The VM was resumed from a snapshot: its clock and secret are stale. `time_ms` is the
 * supervisor's clock (milliseconds since the epoch) when it sent this.
 */
export const Restored = z.strictObject({
  type: z.literal("restored"),
  time_ms: z.number().int().positive(),
  /**
   * 32 fresh random bytes, base64, that the puppet mixes into the kernel's random pool before
   * reseeding it: every VM resumed from one snapshot starts with the same generator state.
   */
  entropy: z.base64().length(44),
});
export type Restored = z.infer<typeof Restored>;

export const SupervisorToPuppet = z.discriminatedUnion("type", [
  AuthOk,
  Restored,
  AuthFailed,
  Heartbeat,
  Shutdown,
]);
export type SupervisorToPuppet = z.infer<typeof SupervisorToPuppet>;

// ---------------------------------------------------------------------------------------------
// `tml puppet finish|terminate` -> the running puppet's control socket

export const PuppetControlRequest = z.discriminatedUnion("type", [
  WorkloadFinished,
  TerminateRequest,
]);
export type PuppetControlRequest = z.infer<typeof PuppetControlRequest>;

export const PuppetControlReply = z.strictObject({
  ok: z.boolean(),
  message: z.string().max(4096).optional(),
});
export type PuppetControlReply = z.infer<typeof PuppetControlReply>;

/**
 * Compares a secret a puppet offers with the expected one in constant time. Both are hashed
 * first, so neither their contents nor their lengths show in the time taken.
 */
export function puppetSecretMatches(offered: string, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(offered), digest(expected));
}
