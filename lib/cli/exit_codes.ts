/**
 * The CLI's exit codes, in one table. Every command exits 0 on success, 1 when tml failed
 * (network, server error, refusal) and 2 for a usage error (bad flag or input). `tml job wait`
 * also tells a job's outcome apart by its code, so a CI step can branch on it without parsing
 * JSON; README.md ("Exit codes of `tml job wait`") and `tml help job wait` show this table.
 */
import type { ExitStatus } from "../lifecycle.ts";

export const EXIT_SUCCESS = 0;
/** tml itself failed: network error, server error, refusal (401, 403, 404, 409…). */
export const EXIT_FAILURE = 1;
/** Usage error: a bad flag, or input the switchboard rejected as invalid (400, 413). */
export const EXIT_USAGE = 2;
/** `tml job wait --timeout` passed before the job terminated. */
export const EXIT_WAIT_TIMEOUT = 15;

/** One row of the table: a code and the exit statuses (or situation) it stands for. */
export interface ExitCodeRow {
  code: number;
  meaning: string;
  statuses: readonly ExitStatus[];
}

/** Every exit code of `tml job wait`, in order. Each exit status appears in exactly one row. */
export const JOB_WAIT_EXIT_CODES: readonly ExitCodeRow[] = [
  {
    code: EXIT_SUCCESS,
    meaning: "the workload succeeded",
    statuses: ["workload_finished_success"],
  },
  { code: EXIT_FAILURE, meaning: "tml failed (network or server error)", statuses: [] },
  { code: EXIT_USAGE, meaning: "usage error (bad flag or input)", statuses: [] },
  { code: 10, meaning: "the workload failed", statuses: ["workload_finished_error"] },
  {
    code: 11,
    meaning: "the workload's result is unknown",
    statuses: ["workload_finished_unknown"],
  },
  {
    code: 12,
    meaning: "infrastructure failure",
    statuses: [
      "supervisor_match_error",
      "internal_supervisor_error",
      "supervisor_host_start_error",
      "supervisor_dropped_job",
    ],
  },
  { code: 13, meaning: "timeout", statuses: ["queue_timeout", "job_timeout"] },
  { code: 14, meaning: "canceled", statuses: ["job_canceled"] },
  {
    code: EXIT_WAIT_TIMEOUT,
    meaning: "`--timeout` passed before the job terminated",
    statuses: [],
  },
];

/** The exit code of each exit status, derived from the table. */
export const EXIT_CODE_OF_STATUS: Readonly<Record<ExitStatus, number>> = Object.fromEntries(
  JOB_WAIT_EXIT_CODES.flatMap((row) => row.statuses.map((status) => [status, row.code])),
) as Record<ExitStatus, number>;

/** The table as plain text, for `tml help job wait`; lines stay within 80 columns. */
export function exitCodeTableText(): string {
  const lines = ["Exit codes:"];
  for (const row of JOB_WAIT_EXIT_CODES) {
    let line = `  ${String(row.code).padEnd(3)} ${row.meaning}`;
    for (const [index, status] of row.statuses.entries()) {
      const piece = `${index === 0 ? ":" : ","} ${status}`;
      if (line.length + piece.length > 80) {
        lines.push(line + (index === 0 ? ":" : ","));
        line = `      ${status}`;
      } else {
        line += piece;
      }
    }
    lines.push(line);
  }
  return lines.join("\n");
}

/**
 * Thrown by a command that has printed its result and must exit with a particular code (`tml
 * job wait`); `runCli` exits with `code` and prints nothing more.
 */
export class ExitRequest extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = "ExitRequest";
  }
}

/** The exit code of a job's outcome: its status's code once terminated, else undefined. */
export function exitCodeOfJob(
  job: { state: string; exit_status: ExitStatus | null },
): number | undefined {
  if (job.state !== "terminated") return undefined;
  return job.exit_status === null ? EXIT_FAILURE : EXIT_CODE_OF_STATUS[job.exit_status];
}
