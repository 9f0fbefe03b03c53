/**
 * Migration 3: jobs and their history. A job row holds the desired side (cancel/stop intent,
 * deadlines) and the observed side (state, exit status as reported); `job_events` records every
 * state and exit-status change with its time and actor.
 */
import type { Migration } from "../migrations.ts";

export const migration0003Jobs: Migration = {
  version: 3,
  name: "jobs",
  sql: `
CREATE TABLE jobs (
  job_id uuid PRIMARY KEY,
  -- Monotonic enqueue order: FIFO scheduling and stable paging.
  seq bigserial NOT NULL UNIQUE,
  owner_id uuid NOT NULL REFERENCES users(user_id),
  image_id text NOT NULL,
  tag_config text NOT NULL,
  -- Name -> {value, secret}; secret values leave the switchboard only towards the supervisor.
  parameters jsonb NOT NULL,
  ssh_keys text[] NOT NULL,
  workload text,
  restart_count integer NOT NULL,
  restarted_from uuid REFERENCES jobs(job_id),
  restarted_as uuid,
  timeout_ms bigint NOT NULL,
  queue_timeout_ms bigint NOT NULL,
  -- The owner's run permissions when the job was enqueued (admin, run_job_on_supervisor:*).
  run_permissions text[] NOT NULL,
  state text NOT NULL,
  sub_state text,
  exit_status text,
  exit_message text,
  supervisor_id uuid REFERENCES supervisors(supervisor_id) ON DELETE SET NULL,
  -- The supervisor acknowledged start_job: from then on, a supervisor that forgets the job dropped it.
  start_acked boolean NOT NULL DEFAULT false,
  cancel_requested boolean NOT NULL DEFAULT false,
  -- Why the switchboard asked the supervisor to stop (canceled, timeout), and when.
  stop_reason text,
  stop_requested_at timestamptz,
  enqueued_at timestamptz NOT NULL DEFAULT now(),
  dispatched_at timestamptz,
  terminated_at timestamptz
);
CREATE INDEX jobs_active_idx ON jobs (seq) WHERE state <> 'terminated';
CREATE INDEX jobs_owner_idx ON jobs (owner_id, seq);
CREATE INDEX jobs_supervisor_idx ON jobs (supervisor_id) WHERE state <> 'terminated';

CREATE TABLE job_events (
  event_id bigserial PRIMARY KEY,
  job_id uuid NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor text NOT NULL,
  kind text NOT NULL,
  state text,
  sub_state text,
  exit_status text,
  message text
);
CREATE INDEX job_events_job_idx ON job_events (job_id, event_id);
`,
};
