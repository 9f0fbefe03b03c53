/**
 * Every cell of the three tables of shared/spec/job-lifecycle.md, copied here as literal text
 * (independently of the module's own data), checked against the module's functions.
 */
import { assertEquals } from "./testing/asserts.ts";
import {
  applyExitStatus,
  applyStateChange,
  type ExecutionState,
  type ExitStatus,
  isFinalExitStatus,
} from "./lifecycle.ts";

const STATES: ExecutionState[] = [
  "queued",
  "scheduled",
  "initializing",
  "ready",
  "terminating",
  "terminated",
];

// Table 1, verbatim: row = from, column = to (queued scheduled initializing ready terminating terminated).
const STATE_TABLE = `
queued       | - Y Y Y Y Y
scheduled    | . - Y Y Y Y
initializing | . . - Y Y Y
ready        | . . Y - Y Y
terminating  | . . . . - Y
terminated   | . . . . . -`;

// "who may move a job into it".
const MOVER: Record<ExecutionState, "switchboard" | "supervisor" | "both"> = {
  queued: "switchboard",
  scheduled: "switchboard",
  initializing: "supervisor",
  ready: "supervisor",
  terminating: "supervisor",
  terminated: "both",
};

const STATUSES: ExitStatus[] = [
  "supervisor_match_error",
  "queue_timeout",
  "internal_supervisor_error",
  "supervisor_host_start_error",
  "job_canceled",
  "workload_finished_success",
  "workload_finished_error",
  "workload_finished_unknown",
  "supervisor_dropped_job",
  "job_timeout",
];

// Table 2, verbatim: columns match_error queue_timeout internal_error host_start_error canceled
// workload_finished_* dropped_job job_timeout.
const STATUS_TABLE = `
supervisor_match_error      | - . . . . . . .
queue_timeout               | . - . . . . . .
internal_supervisor_error   | . . - . . . . .
supervisor_host_start_error | . . . - . . . .
job_canceled                | . . . . - . . .
workload_finished_*         | . . Y Y Y - Y Y
supervisor_dropped_job      | . . . . . . - .
job_timeout                 | . . . . . . . -`;
const STATUS_COLUMNS = [
  ["supervisor_match_error"],
  ["queue_timeout"],
  ["internal_supervisor_error"],
  ["supervisor_host_start_error"],
  ["job_canceled"],
  ["workload_finished_success", "workload_finished_error", "workload_finished_unknown"],
  ["supervisor_dropped_job"],
  ["job_timeout"],
] as const;

// Table 3, verbatim: row = status, columns = states in the order of STATES.
const STATUS_IN_STATE_TABLE = `
supervisor_match_error      | Y . . . . .
queue_timeout               | Y . . . . .
internal_supervisor_error   | . Y Y Y Y .
supervisor_host_start_error | . Y Y Y Y .
job_canceled                | . Y Y Y Y .
workload_finished_*         | . Y Y Y Y .
supervisor_dropped_job      | . Y Y Y Y .
job_timeout                 | . Y Y Y Y .`;

// Who may set each status (the spec's prose: match error, queue timeout and dropped job by the
// switchboard; host start error and workload results reported by the supervisor).
const SETTER: Record<ExitStatus, "switchboard" | "supervisor" | "both"> = {
  supervisor_match_error: "switchboard",
  queue_timeout: "switchboard",
  internal_supervisor_error: "both",
  supervisor_host_start_error: "supervisor",
  job_canceled: "both",
  workload_finished_success: "supervisor",
  workload_finished_error: "supervisor",
  workload_finished_unknown: "supervisor",
  supervisor_dropped_job: "switchboard",
  job_timeout: "both",
};

function parse(table: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of table.trim().split("\n")) {
    const [name, cells] = line.split("|");
    rows.set(name.trim(), cells.trim().split(/\s+/));
  }
  return rows;
}

function expand(name: string): ExitStatus[] {
  return name === "workload_finished_*"
    ? ["workload_finished_success", "workload_finished_error", "workload_finished_unknown"]
    : [name as ExitStatus];
}

Deno.test("applyStateChange() follows every cell of the state transition table", () => {
  const table = parse(STATE_TABLE);
  let cells = 0;
  for (const from of STATES) {
    STATES.forEach((to, column) => {
      const cell = table.get(from)![column];
      for (const actor of ["switchboard", "supervisor"] as const) {
        const mayMove = MOVER[to] === "both" || MOVER[to] === actor;
        const decision = applyStateChange({ state: from, exitStatus: null }, to, actor);
        // "-": a re-report of the same state is accepted unchanged while the host is up.
        const sameStateOk = cell === "-" && ["initializing", "ready", "terminating"].includes(to);
        const expected = mayMove && (cell === "Y" || sameStateOk);
        assertEquals(decision.ok, expected, `${from} -> ${to} by ${actor}`);
        if (decision.ok) assertEquals(decision.next.state, to);
        else assertEquals(decision.reason.length > 0, true);
        cells++;
      }
    });
  }
  assertEquals(cells, 6 * 6 * 2);
});

Deno.test("applyExitStatus() follows every cell of the exit-status transition table", () => {
  const table = parse(STATUS_TABLE);
  let cells = 0;
  for (const [rowName, row] of table) {
    for (const current of expand(rowName)) {
      STATUS_COLUMNS.forEach((columnStatuses, column) => {
        for (const next of columnStatuses) {
          // Set in a state where the new status is allowed, by an actor allowed to set it.
          const state: ExecutionState =
            next === "supervisor_match_error" || next === "queue_timeout" ? "queued" : "ready";
          const actor = SETTER[next] === "switchboard" ? "switchboard" : "supervisor";
          const decision = applyExitStatus({ state, exitStatus: current }, next, actor);
          const cell = row[column];
          // "-" on the diagonal: setting the same status again changes nothing; a workload
          // result may be replaced by a later workload result.
          const expected = cell === "Y" ||
            (cell === "-" && (current === next || rowName === "workload_finished_*"));
          assertEquals(decision.ok, expected, `${current} -> ${next}`);
          if (decision.ok) assertEquals(decision.next.exitStatus, next);
          cells++;
        }
      });
    }
  }
  assertEquals(cells, 10 * 10);
});

Deno.test("applyExitStatus() follows every cell of the status-in-state table and the setters", () => {
  const table = parse(STATUS_IN_STATE_TABLE);
  let cells = 0;
  for (const [rowName, row] of table) {
    for (const status of expand(rowName)) {
      STATES.forEach((state, column) => {
        for (const actor of ["switchboard", "supervisor"] as const) {
          const maySet = SETTER[status] === "both" || SETTER[status] === actor;
          const decision = applyExitStatus({ state, exitStatus: null }, status, actor);
          assertEquals(
            decision.ok,
            maySet && row[column] === "Y",
            `${status} in ${state} by ${actor}`,
          );
          cells++;
        }
      });
    }
  }
  assertEquals(cells, 10 * 6 * 2);
});

Deno.test("applyExitStatus() keeps a final status once set", () => {
  for (const status of STATUSES) {
    const final =
      ["workload_finished_success", "workload_finished_error", "workload_finished_unknown"]
          .includes(status)
        ? false
        : true;
    assertEquals(isFinalExitStatus(status), final, status);
  }
  const canceled = applyExitStatus(
    { state: "ready", exitStatus: "job_canceled" },
    "workload_finished_success",
    "supervisor",
  );
  assertEquals(canceled.ok, false);
  if (!canceled.ok) assertEquals(canceled.reason.includes(`"job_canceled"`), true);
});
