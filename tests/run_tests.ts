/**
 * `./tmlw test`: makes sure the system programs the tests drive are installed (installing them
 * as root, otherwise saying what to install), runs every test, and ends with one line
 * `N passed, N failed` that CI tools look for. Extra arguments go to `deno test`.
 */
import { requireProgram } from "../lib/system_packages.ts";
import { TEST_SYSTEM_PROGRAMS } from "./support/system_programs.ts";

for (const program of TEST_SYSTEM_PROGRAMS) await requireProgram(program);

const args = Deno.args.length > 0 ? Deno.args : ["."];
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--parallel", ...args],
  stdout: "piped",
  stderr: "inherit",
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;

// deno test ends with "ok | 12 passed | 0 failed (3s)" or "FAILED | 11 passed | 1 failed (3s)".
// deno-lint-ignore no-control-regex
const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
const summaries = [...plain.matchAll(/(\d+) passed[^|]*\| (\d+) failed/g)];
const last = summaries.at(-1);
const passed = last ? Number(last[1]) : 0;
const failed = last ? Number(last[2]) : status.success ? 0 : 1;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.success && failed === 0 ? 0 : 1);
