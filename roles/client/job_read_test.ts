import { assertEquals } from "../../lib/testing/asserts.ts";
import { jobView } from "../../lib/client/test_server.ts";
import type { JobEvent, JobHistory } from "../../lib/protocol/api.ts";
import { historyTable, jobTable } from "./job_read.ts";

function event(at: string, change: Partial<JobEvent>): JobEvent {
  return {
    at: `2026-01-01T00:${at}Z`,
    actor: "switchboard",
    kind: "state",
    state: null,
    sub_state: null,
    exit_status: null,
    message: null,
    ...change,
  };
}

const JOB_ID = "6f1c2b3a-4d5e-4f60-8a71-92b3c4d5e6f7";

Deno.test("historyTable() shows the time since enqueue and how long each phase lasted", () => {
  const history: JobHistory = {
    job_id: JOB_ID,
    events: [
      event("00:00.000", { state: "queued" }),
      event("00:00.250", { state: "scheduled" }),
      event("00:02.000", { state: "initializing", sub_state: "booting", actor: "supervisor" }),
      event("01:32.000", { state: "ready", actor: "supervisor" }),
      event("31:32.000", {
        kind: "exit_status",
        exit_status: "workload_finished_success",
        actor: "supervisor",
        message: "exit code 0",
      }),
      event("31:33.000", { state: "terminated" }),
    ],
  };
  const table = historyTable(history, Date.parse("2026-01-01T05:00:00Z"));
  assertEquals(table.rows.map((row) => [row[1], row[3], row[4]]), [
    ["0ms", "queued", "250ms"],
    ["250ms", "scheduled", "1.8s"],
    ["2s", "initializing (booting)", "1m30s"],
    ["1m32s", "ready", "30m"],
    ["31m32s", "exit status workload_finished_success", "1s"],
    ["31m33s", "terminated", null],
  ]);
  assertEquals(table.rows[4][5], "exit code 0");
});

Deno.test("historyTable() shows how long a running job has been in its current phase", () => {
  const history: JobHistory = {
    job_id: JOB_ID,
    events: [event("00:00.000", { state: "queued" }), event("00:10.000", { state: "ready" })],
  };
  const table = historyTable(history, Date.parse("2026-01-01T00:01:10Z"));
  assertEquals(table.rows[1][4], "1m so far");
});

Deno.test("jobTable() shows one row per job with its run time once terminated", () => {
  const table = jobTable([
    jobView({ state: "initializing", sub_state: "fetching image", tag_config: "" }),
    jobView({
      state: "terminated",
      exit_status: "workload_finished_error",
      dispatched_at: "2026-01-01T00:00:00.000Z",
      terminated_at: "2026-01-01T00:05:30.000Z",
    }),
  ]);
  assertEquals(table.rows[0][1], "initializing (fetching image)");
  assertEquals(table.rows[0][3], "(any)");
  assertEquals(table.rows[0][5], null);
  assertEquals(table.rows[1][2], "workload_finished_error");
  assertEquals(table.rows[1][5], "5m30s");
});
