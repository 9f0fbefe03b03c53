/**
 * The supervisor-puppet channel: newline-delimited JSON frames (at most 1 MiB each) over a
 * byte stream, a virtio-serial port for VMs or TCP for hosts on a network. The puppet speaks
 * first, authenticating with the per-job secret it got out of band; the supervisor answers with
 * the job (parameters with their values, SSH keys, workload) or refuses.
 *
 *   puppet                                   supervisor
 *     | -- auth {protocol_version, secret} --> |
 *     | <--------- auth_ok {job} | auth_failed |
 *     | -- ready ----------------------------> |   host is up, files written
 *     | -- workload_output {stream, data} ---> |   console lines, for the job log
 *     | -- workload_finished {outcome} ------> |
 *     | -- terminate_request ----------------> |   `tml puppet terminate`
 *     | <------------- heartbeat ------------> |   both ways, every few seconds
 *     | <------------------------ shutdown --- |
 */
import { z } from "zod";
import { JobParameters, SshPublicKey, Uuid, WorkloadCommand } from "./common.ts";

export const MAX_PUPPET_FRAME_BYTES = 1024 * 1024;

export const PuppetJob = z.object({
  job_id: Uuid,
  parameters: JobParameters,
  ssh_keys: z.array(SshPublicKey),
  workload: WorkloadCommand.nullable(),
});
export type PuppetJob = z.infer<typeof PuppetJob>;

export const WorkloadOutcome = z.enum(["success", "error", "unknown"]);
export type WorkloadOutcome = z.infer<typeof WorkloadOutcome>;

export const PuppetMessage = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("auth"),
    protocol_version: z.number().int(),
    secret: z.string().max(256),
  }),
  z.strictObject({ type: z.literal("ready") }),
  z.strictObject({
    type: z.literal("workload_output"),
    stream: z.enum(["stdout", "stderr"]),
    data: z.string().max(64 * 1024),
  }),
  z.strictObject({
    type: z.literal("workload_finished"),
    outcome: WorkloadOutcome,
    exit_code: z.number().int().optional(),
    message: z.string().max(4096).optional(),
  }),
  z.strictObject({ type: z.literal("terminate_request") }),
  z.strictObject({ type: z.literal("heartbeat") }),
]);
export type PuppetMessage = z.infer<typeof PuppetMessage>;

export const SupervisorToPuppet = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("auth_ok"), job: PuppetJob }),
  z.strictObject({ type: z.literal("auth_failed"), message: z.string() }),
  z.strictObject({ type: z.literal("heartbeat") }),
  z.strictObject({ type: z.literal("shutdown") }),
]);
export type SupervisorToPuppet = z.infer<typeof SupervisorToPuppet>;
