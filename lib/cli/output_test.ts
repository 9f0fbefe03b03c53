import { assert, assertEquals, assertStringIncludes } from "../testing/asserts.ts";
import { fieldTable, renderTable, wantsJson } from "./output.ts";

const terminal = { stdoutIsTerminal: true, outputEnv: undefined };
const pipe = { stdoutIsTerminal: false, outputEnv: undefined };

Deno.test("wantsJson() gives people tables on a terminal and machines JSON in a pipe", () => {
  assertEquals(wantsJson({}, terminal), false);
  assertEquals(wantsJson({}, pipe), true);
});

Deno.test("wantsJson() always honours --json", () => {
  assertEquals(wantsJson({ json: true }, terminal), true);
  assertEquals(wantsJson({ json: true }, { ...pipe, outputEnv: "table" }), true);
});

Deno.test("wantsJson() lets TML_OUTPUT override the terminal guess", () => {
  assertEquals(wantsJson({}, { ...pipe, outputEnv: "table" }), false);
  assertEquals(wantsJson({}, { ...terminal, outputEnv: "json" }), true);
  assertEquals(wantsJson({}, { ...terminal, outputEnv: "something" }), false);
});

Deno.test("renderTable() shows empty cells as - and keeps every value", () => {
  const text = renderTable({
    head: ["job", "exit status", "ok"],
    rows: [["j-1", null, true], ["j-2", "job_canceled", undefined]],
  });
  for (const expected of ["job", "exit status", "j-1", "j-2", "job_canceled", "true"]) {
    assertStringIncludes(text, expected);
  }
  const lines = text.split("\n").filter((line) => line.includes("j-1"));
  assertEquals(lines.length, 1);
  assertStringIncludes(lines[0], " - ");
});

Deno.test("fieldTable() renders nested values as compact JSON", () => {
  const table = fieldTable({ state: "queued", parameters: { x: { value: null, secret: true } } });
  assertEquals(table.head, ["field", "value"]);
  assertEquals(table.rows, [
    ["state", "queued"],
    ["parameters", '{"x":{"value":null,"secret":true}}'],
  ]);
  assert(!renderTable(table).includes("[object Object]"));
});
