/**
 * `tml job enqueue` must start fast on a CI runner: neither the command tree nor the enqueue
 * code may statically import the database, server or password-hashing libraries. Dynamic
 * `import()`s are where roles load lazily, so only static imports are followed here.
 */
import { assertEquals } from "../../lib/testing/asserts.ts";

const HEAVY = ["@electric-sql/pglite", "postgres", "hono", "@hono/zod-validator", "hash-wasm"];

/** Every module and package reached from `entry` through static imports only. */
async function staticClosure(entry: URL): Promise<{ files: Set<string>; packages: Set<string> }> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const url = pending.pop()!;
    if (files.has(url.href)) continue;
    files.add(url.href);
    const source = await Deno.readTextFile(url);
    // `import … from "x"`, `export … from "x"` and `import "x"`; never `import("x")`, and not
    // `import type`, which TypeScript erases.
    const pattern = /^\s*(?:import|export)\s+(?!type\s)(?:[^"'();]*?\s+from\s+)?["']([^"']+)["']/gm;
    for (const [, specifier] of source.matchAll(pattern)) {
      if (specifier.startsWith(".")) pending.push(new URL(specifier, url));
      else packages.add(specifier.replace(/^npm:/, "").replace(/@[^@/]*$/, ""));
    }
  }
  return { files, packages };
}

Deno.test("tml's command tree and job enqueue load no database or server code", async () => {
  for (const entry of ["../../main.ts", "./job_enqueue.ts", "./job_control.ts", "./login.ts"]) {
    const { files, packages } = await staticClosure(new URL(entry, import.meta.url));
    assertEquals(HEAVY.filter((name) => packages.has(name)), [], `packages reached from ${entry}`);
    const servers = [...files].filter((file) =>
      /roles\/(switchboard|image_store)\/(?!commands)/.test(file) || file.includes("lib/db/")
    );
    assertEquals(servers, [], `server modules reached from ${entry}`);
  }
});
