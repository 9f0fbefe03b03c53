/**
 * A job as the switchboard stores it (one `jobs` row), and its public view: `toJobView` is the
 * only way a job leaves the API, and it blanks every secret parameter value.
 */
import type { ExecutionState, ExitStatus } from "../../lib/lifecycle.ts";
import type { JobParameters } from "../../lib/protocol/common.ts";
import type { JobView, SshEndpoint } from "../../lib/protocol/api.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";

export interface JobRow {
  job_id: string;
  seq: number;
  owner_id: string;
  image_id: string;
  tag_config: string;
  parameters: JobParameters;
  ssh_keys: string[];
  workload: string | null;
  restart_count: number;
  restarted_from: string | null;
  restarted_as: string | null;
  timeout_ms: number;
  queue_timeout_ms: number;
  run_permissions: string[];
  state: ExecutionState;
  sub_state: string | null;
  exit_status: ExitStatus | null;
  exit_message: string | null;
  supervisor_id: string | null;
  start_acked: boolean;
  cancel_requested: boolean;
  stop_reason: string | null;
  stop_requested_at: Date | null;
  enqueued_at: Date;
  dispatched_at: Date | null;
  terminated_at: Date | null;
}

/** The job's public view; `sshEndpoints` says where its SSH services are reached now. */
export function toJobView(job: JobRow, sshEndpoints: SshEndpoint[] = []): JobView {
  const parameters: JobView["parameters"] = {};
  for (const [name, parameter] of Object.entries(job.parameters)) {
    parameters[name] = {
      value: parameter.secret ? null : parameter.value,
      secret: parameter.secret,
    };
  }
  return {
    job_id: job.job_id,
    owner_id: job.owner_id,
    image_id: job.image_id,
    tag_config: job.tag_config,
    parameters,
    ssh_keys: job.ssh_keys,
    workload: job.workload,
    restart_count: job.restart_count,
    restarted_from: job.restarted_from,
    restarted_as: job.restarted_as,
    timeout_ms: job.timeout_ms,
    queue_timeout_ms: job.queue_timeout_ms,
    state: job.state,
    sub_state: job.sub_state,
    exit_status: job.exit_status,
    exit_message: job.exit_message,
    supervisor_id: job.supervisor_id,
    cancel_requested: job.cancel_requested,
    enqueued_at: job.enqueued_at.toISOString(),
    dispatched_at: job.dispatched_at?.toISOString() ?? null,
    terminated_at: job.terminated_at?.toISOString() ?? null,
    ssh_endpoints: sshEndpoints,
  };
}

/** What the supervisor that runs the job receives: the only place secret values go. */
export function toJobSpec(job: JobRow): JobSpec {
  return {
    job_id: job.job_id,
    image_id: job.image_id,
    parameters: job.parameters,
    ssh_keys: job.ssh_keys,
    workload: job.workload,
    timeout_ms: job.timeout_ms,
  };
}
