/**
 * Exit codes of the CLI. `tml job wait` tells a job's outcome apart by its code, so a CI step
 * can branch on it without parsing JSON:
 *
 * | code | meaning                                                                  |
 * |------|--------------------------------------------------------------------------|
 * | 0    | workload_finished_success                                                 |
 * | 1    | tml itself failed (network, server error)                                 |
 * | 2    | usage error (bad flag, invalid input)                                     |
 * | 10   | workload_finished_error                                                   |
 * | 11   | workload_finished_unknown                                                 |
 * | 12   | infrastructure failure: supervisor_match_error, internal_supervisor_error,|
 * |      | supervisor_host_start_error, supervisor_dropped_job                      |
 * | 13   | timeout: queue_timeout, job_timeout                                       |
 * | 14   | job_canceled                                                              |
 * | 15   | `--timeout` of `tml job wait` passed before the job terminated            |
 */
import type { ExitStatus } from "../lifecycle.ts";

export const EXIT_WAIT_TIMEOUT = 15;

export const EXIT_CODE_OF_STATUS: Readonly<Record<ExitStatus, number>> = {
  workload_finished_success: 0,
  workload_finished_error: 10,
  workload_finished_unknown: 11,
  supervisor_match_error: 12,
  internal_supervisor_error: 12,
  supervisor_host_start_error: 12,
  supervisor_dropped_job: 12,
  queue_timeout: 13,
  job_timeout: 13,
  job_canceled: 14,
};

export const EXIT_CODE_TABLE = `Exit codes:
  0   workload_finished_success
  1   tml failed (network or server error)
  2   usage error
  10  workload_finished_error
  11  workload_finished_unknown
  12  infrastructure failure (supervisor_match_error, internal_supervisor_error,
      supervisor_host_start_error, supervisor_dropped_job)
  13  timeout (queue_timeout, job_timeout)
  14  job_canceled
  15  --timeout passed before the job terminated`;
