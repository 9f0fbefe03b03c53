import { assert, assertEquals, assertStringIncludes } from "../testing/asserts.ts";
import { ExitStatus } from "../lifecycle.ts";
import {
  EXIT_CODE_OF_STATUS,
  EXIT_FAILURE,
  EXIT_USAGE,
  EXIT_WAIT_TIMEOUT,
  exitCodeOfJob,
  exitCodeTableText,
  JOB_WAIT_EXIT_CODES,
} from "./exit_codes.ts";

/** The outcome classes the CLI contract tells apart, each with its statuses. */
const CLASSES: Record<string, ExitStatus[]> = {
  success: ["workload_finished_success"],
  failure: ["workload_finished_error"],
  unknown: ["workload_finished_unknown"],
  infrastructure: [
    "supervisor_match_error",
    "internal_supervisor_error",
    "supervisor_host_start_error",
    "supervisor_dropped_job",
  ],
  timeout: ["queue_timeout", "job_timeout"],
  canceled: ["job_canceled"],
};

Deno.test("EXIT_CODE_OF_STATUS maps every exit status, one code per outcome class", () => {
  assertEquals(Object.keys(EXIT_CODE_OF_STATUS).sort(), [...ExitStatus.options].sort());
  const codeOfClass = Object.values(CLASSES).map((statuses) => {
    const codes = new Set(statuses.map((status) => EXIT_CODE_OF_STATUS[status]));
    assertEquals(codes.size, 1, `one code for ${statuses.join(", ")}`);
    return [...codes][0];
  });
  assertEquals(new Set(codeOfClass).size, codeOfClass.length, "classes have distinct codes");
  assertEquals(EXIT_CODE_OF_STATUS.workload_finished_success, 0);
  for (const code of codeOfClass.slice(1)) {
    assert(code !== EXIT_FAILURE && code !== EXIT_USAGE && code !== EXIT_WAIT_TIMEOUT, `${code}`);
  }
});

Deno.test("JOB_WAIT_EXIT_CODES lists each code and each status once", () => {
  const codes = JOB_WAIT_EXIT_CODES.map((row) => row.code);
  assertEquals(new Set(codes).size, codes.length);
  const statuses = JOB_WAIT_EXIT_CODES.flatMap((row) => row.statuses);
  assertEquals(statuses.length, ExitStatus.options.length);
});

Deno.test("exitCodeOfJob() is undefined until the job is terminated", () => {
  assertEquals(exitCodeOfJob({ state: "ready", exit_status: null }), undefined);
  assertEquals(
    exitCodeOfJob({ state: "terminating", exit_status: "workload_finished_error" }),
    undefined,
  );
  assertEquals(exitCodeOfJob({ state: "terminated", exit_status: "job_canceled" }), 14);
  assertEquals(exitCodeOfJob({ state: "terminated", exit_status: "job_timeout" }), 13);
  assertEquals(exitCodeOfJob({ state: "terminated", exit_status: null }), EXIT_FAILURE);
});

Deno.test("exitCodeTableText() shows every code and status within 80 columns", () => {
  const text = exitCodeTableText();
  for (const row of JOB_WAIT_EXIT_CODES) {
    assertStringIncludes(text, `  ${String(row.code).padEnd(3)} ${row.meaning}`);
    for (const status of row.statuses) assertStringIncludes(text, status);
  }
  for (const line of text.split("\n")) assert(line.length <= 80, line);
});

Deno.test("README.md documents the same exit codes as JOB_WAIT_EXIT_CODES", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const start = readme.indexOf("## Exit codes of `tml job wait`");
  assert(start >= 0, "README.md lacks the heading");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const rows = section.split("\n").filter((line) => /^\|\s*\d+\s*\|/.test(line));
  assertEquals(rows.length, JOB_WAIT_EXIT_CODES.length);
  for (const row of JOB_WAIT_EXIT_CODES) {
    const line = rows.find((candidate) => new RegExp(`^\\|\\s*${row.code}\\s*\\|`).test(candidate));
    assert(line !== undefined, `README row for ${row.code}`);
    for (const status of row.statuses) assertStringIncludes(line, status);
  }
});
