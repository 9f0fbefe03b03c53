/**
 * `deno task bench`: runs every `bench/*_bench.ts` in turn, each as its own `deno run -A`
 * process (so one benchmark's memory and open sockets never skew the next), and ends with a
 * summary of which met their targets. A bench prints its figures with their targets and ends
 * each figure line with PASS or MISS; a bench that exits non-zero counts as failed.
 *
 * `deno task bench image_` runs only the benchmarks whose file name contains `image_`.
 */
const benchDir = new URL(".", import.meta.url).pathname;
const filters = Deno.args;

const files: string[] = [];
for await (const entry of Deno.readDir(benchDir)) {
  if (!entry.isFile || !entry.name.endsWith("_bench.ts")) continue;
  if (filters.length > 0 && !filters.some((filter) => entry.name.includes(filter))) continue;
  files.push(entry.name);
}
files.sort();

const results: { file: string; ok: boolean; pass: number; miss: number }[] = [];
for (const file of files) {
  console.log(`\n=== ${file}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${benchDir}${file}`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    output += decoder.decode(chunk, { stream: true });
  }
  const status = await child.status;
  results.push({
    file,
    ok: status.success,
    pass: output.match(/\bPASS\b/g)?.length ?? 0,
    miss: output.match(/\bMISS\b/g)?.length ?? 0,
  });
}

console.log("\n=== summary");
for (const { file, ok, pass, miss } of results) {
  console.log(`${ok ? "ran   " : "FAILED"} ${file}: ${pass} PASS, ${miss} MISS`);
}
Deno.exit(results.every((result) => result.ok) ? 0 : 1);
