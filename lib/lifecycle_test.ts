/**
 * Every cell of the three tables of shared/spec/job-lifecycle.md, and the actor rules, checked
 * against the module's functions. The expected values are the spec's tables copied here as
 * text, independently of the module's own data, so a wrong cell in either one fails a test.
 */
import { assert, assertEquals, assertStringIncludes } from "./testing/asserts.ts";
import {
  type Actor,
  applyExitStatus,
  applyStateChange,
  type ExecutionState,
  type ExitStatus,
  isFinalExitStatus,
  isInfrastructureFailure,
  type JobLifecycle,
  type LifecycleDecision,
} from "./lifecycle.ts";

const ACTORS: Actor[] = ["switchboard", "supervisor"];
const WORKLOAD_RESULTS: ExitStatus[] = [
  "workload_finished_success",
  "workload_finished_error",
  "workload_finished_unknown",
];

// Spec: "Execution state", with the "who may move a job into it" column.
const STATES = `
queued       | switchboard
scheduled    | switchboard
initializing | supervisor
ready        | supervisor
terminating  | supervisor
terminated   | supervisor, or switchboard`;

// Spec: "Legal transitions (row = from, column = to; Y = allowed)".
const STATE_TRANSITIONS = `
from \\ to    | queued | scheduled | initializing | ready | terminating | terminated
queued       |   -    |     Y     |      Y       |   Y   |      Y      |     Y
scheduled    |   .    |     -     |      Y       |   Y   |      Y      |     Y
initializing |   .    |     .     |      -       |   Y   |      Y      |     Y
ready        |   .    |     .     |      Y       |   -   |      Y      |     Y
terminating  |   .    |     .     |      .       |   .   |      -      |     Y
terminated   |   .    |     .     |      .       |   .   |      .      |     -`;

// Spec: "Exit status" (meaning omitted), with who may set each status (the brief's list).
const EXIT_STATUSES = `
supervisor_match_error      | yes | switchboard
queue_timeout               | yes | switchboard
internal_supervisor_error   | yes | switchboard, supervisor
supervisor_host_start_error | yes | supervisor
job_canceled                | yes | switchboard, supervisor
workload_finished_success   | no  | supervisor
workload_finished_error     | no  | supervisor
workload_finished_unknown   | no  | supervisor
supervisor_dropped_job      | yes | switchboard
job_timeout                 | yes | switchboard, supervisor`;

// Spec: "Legal exit-status transitions (row = current status, column = new status)".
const EXIT_STATUS_TRANSITIONS = `
current \\ new | supervisor_match_error | queue_timeout | internal_supervisor_error | supervisor_host_start_error | job_canceled | workload_finished_* | supervisor_dropped_job | job_timeout
supervisor_match_error      | - | . | . | . | . | . | . | .
queue_timeout               | . | - | . | . | . | . | . | .
internal_supervisor_error   | . | . | - | . | . | . | . | .
supervisor_host_start_error | . | . | . | - | . | . | . | .
job_canceled                | . | . | . | . | - | . | . | .
workload_finished_*         | . | . | Y | Y | Y | - | Y | Y
supervisor_dropped_job      | . | . | . | . | . | . | - | .
job_timeout                 | . | . | . | . | . | . | . | -`;

// Spec: "Which exit status may be set in which execution state".
const EXIT_STATUS_STATES = `
exit status | queued | scheduled | initializing | ready | terminating | terminated
supervisor_match_error      | Y | . | . | . | . | .
queue_timeout               | Y | . | . | . | . | .
internal_supervisor_error   | . | Y | Y | Y | Y | .
supervisor_host_start_error | . | Y | Y | Y | Y | .
job_canceled                | . | Y | Y | Y | Y | .
workload_finished_*         | . | Y | Y | Y | Y | .
supervisor_dropped_job      | . | Y | Y | Y | Y | .
job_timeout                 | . | Y | Y | Y | Y | .`;

/** A table as `cells(row, column)`; `workload_finished_*` stands for each workload result. */
function grid(text: string): (row: string, column: string) => string {
  const [head, ...lines] = text.trim().split("\n").map((line) =>
    line.split("|").map((cell) => cell.trim())
  );
  const cells = new Map<string, string>();
  for (const [row, ...values] of lines) {
    values.forEach((value, index) => {
      for (const r of expand(row)) {
        for (const c of expand(head[index + 1])) cells.set(`${r} ${c}`, value);
      }
    });
  }
  return (row, column) => {
    const cell = cells.get(`${row} ${column}`);
    if (cell === undefined) throw new Error(`No cell for ${row}, ${column}`);
    return cell;
  };
}

function expand(name: string): string[] {
  return name === "workload_finished_*" ? WORKLOAD_RESULTS : [name];
}

function rows(text: string): string[][] {
  return text.trim().split("\n").map((line) => line.split("|").map((cell) => cell.trim()));
}

const stateNames = rows(STATES).map(([state]) => state as ExecutionState);
const statusNames = rows(EXIT_STATUSES).map(([status]) => status as ExitStatus);
const movers = new Map(rows(STATES).map(([state, who]) => [state, who]));
const setters = new Map(rows(EXIT_STATUSES).map(([status, , who]) => [status, who]));
const finals = new Map(rows(EXIT_STATUSES).map(([status, final]) => [status, final === "yes"]));

function mayMove(actor: Actor, to: ExecutionState): boolean {
  return movers.get(to)!.includes(actor);
}

function maySet(actor: Actor, status: ExitStatus): boolean {
  return setters.get(status)!.includes(actor);
}

function assertRefused(decision: LifecycleDecision, includes: string, label: string): void {
  assert(!decision.ok, `${label}: expected a refusal`);
  if (!decision.ok) assertStringIncludes(decision.reason, includes, label);
}

Deno.test("applyStateChange() follows every cell of the transition table, for each actor", () => {
  const cell = grid(STATE_TRANSITIONS);
  let checked = 0;
  for (const from of stateNames) {
    for (const to of stateNames) {
      for (const actor of ACTORS) {
        const current: JobLifecycle = { state: from, exitStatus: "workload_finished_success" };
        const decision = applyStateChange(current, to, actor);
        const label = `${from} -> ${to} by ${actor}`;
        const value = cell(from, to);
        // "-": only a re-report of a state that carries sub-states is accepted, unchanged.
        const reReport = value === "-" && ["initializing", "ready", "terminating"].includes(to);
        if (mayMove(actor, to) && (value === "Y" || reReport)) {
          assertEquals(decision, { ok: true, next: { ...current, state: to } }, label);
        } else {
          assertRefused(decision, `Cannot move job from "${from}" to "${to}": `, label);
        }
        checked++;
      }
    }
  }
  assertEquals(checked, 6 * 6 * 2);
});

Deno.test("applyStateChange() says why a move is refused", () => {
  const at = (state: ExecutionState): JobLifecycle => ({ state, exitStatus: null });
  assertEquals(applyStateChange(at("terminated"), "ready", "supervisor"), {
    ok: false,
    reason: `Cannot move job from "terminated" to "ready": the job is terminated`,
  });
  assertEquals(applyStateChange(at("scheduled"), "ready", "switchboard"), {
    ok: false,
    reason: `Cannot move job from "scheduled" to "ready": only the supervisor may move a job ` +
      `into "ready"`,
  });
  assertEquals(applyStateChange(at("terminating"), "ready", "supervisor"), {
    ok: false,
    reason: `Cannot move job from "terminating" to "ready": the job may only move on to ` +
      `"terminated"`,
  });
  assertEquals(applyStateChange(at("initializing"), "scheduled", "switchboard"), {
    ok: false,
    reason: `Cannot move job from "initializing" to "scheduled": the job may only move on ` +
      `to "ready", "terminating" or "terminated"`,
  });
  assertEquals(applyStateChange(at("queued"), "queued", "switchboard"), {
    ok: false,
    reason: `Cannot move job from "queued" to "queued": the job is already "queued"`,
  });
});

Deno.test("applyExitStatus() follows every cell of the exit-status transition table", () => {
  const cell = grid(EXIT_STATUS_TRANSITIONS);
  let checked = 0;
  for (const current of statusNames) {
    for (const status of statusNames) {
      // In a state where the new status may be set, by an actor that may set it, so the
      // transition table alone decides.
      const state: ExecutionState = status === "supervisor_match_error" ||
          status === "queue_timeout"
        ? "queued"
        : "ready";
      const actor: Actor = maySet("switchboard", status) ? "switchboard" : "supervisor";
      const decision = applyExitStatus({ state, exitStatus: current }, status, actor);
      const label = `${current} -> ${status}`;
      const value = cell(current, status);
      // "-" on the workload_finished_* diagonal: a later workload result replaces an earlier
      // one. Elsewhere "-" is the same status again, accepted unchanged.
      if (value === "Y" || value === "-") {
        assertEquals(decision, { ok: true, next: { state, exitStatus: status } }, label);
      } else {
        assertRefused(
          decision,
          `Cannot set exit status "${status}" while the job is "${state}": `,
          label,
        );
      }
      checked++;
    }
  }
  assertEquals(checked, 10 * 10);
});

Deno.test("applyExitStatus() follows every cell of the status-in-state table, for each actor", () => {
  const cell = grid(EXIT_STATUS_STATES);
  let checked = 0;
  for (const status of statusNames) {
    for (const state of stateNames) {
      for (const actor of ACTORS) {
        const decision = applyExitStatus({ state, exitStatus: null }, status, actor);
        const label = `${status} in ${state} by ${actor}`;
        if (maySet(actor, status) && cell(status, state) === "Y") {
          assertEquals(decision, { ok: true, next: { state, exitStatus: status } }, label);
        } else {
          assertRefused(
            decision,
            `Cannot set exit status "${status}" while the job is "${state}": `,
            label,
          );
        }
        checked++;
      }
    }
  }
  assertEquals(checked, 10 * 6 * 2);
});

Deno.test("applyExitStatus() says why a status is refused", () => {
  assertEquals(
    applyExitStatus({ state: "ready", exitStatus: null }, "queue_timeout", "supervisor"),
    {
      ok: false,
      reason: `Cannot set exit status "queue_timeout" while the job is "ready": only the ` +
        `switchboard may set it`,
    },
  );
  assertEquals(
    applyExitStatus({ state: "ready", exitStatus: null }, "queue_timeout", "switchboard"),
    {
      ok: false,
      reason: `Cannot set exit status "queue_timeout" while the job is "ready": only while it ` +
        `is "queued"`,
    },
  );
  assertEquals(
    applyExitStatus({ state: "ready", exitStatus: "job_canceled" }, "job_timeout", "switchboard"),
    {
      ok: false,
      reason: `Cannot set exit status "job_timeout" while the job is "ready": the job already ` +
        `has the final status "job_canceled"`,
    },
  );
  assertEquals(
    applyExitStatus(
      { state: "terminated", exitStatus: "workload_finished_error" },
      "workload_finished_success",
      "supervisor",
    ),
    {
      ok: false,
      reason: `Cannot set exit status "workload_finished_success" while the job is ` +
        `"terminated": the exit status of a terminated job never changes`,
    },
  );
});

Deno.test('isFinalExitStatus() is the spec\'s "final once set?" column', () => {
  for (const status of statusNames) assertEquals(isFinalExitStatus(status), finals.get(status));
});

Deno.test("isInfrastructureFailure() names the failures the restart policy retries", () => {
  const infrastructure = [
    "internal_supervisor_error",
    "supervisor_host_start_error",
    "supervisor_dropped_job",
  ];
  for (const status of statusNames) {
    assertEquals(isInfrastructureFailure(status), infrastructure.includes(status), status);
  }
});
