import { assertEquals } from "../../lib/testing/asserts.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { warmUp } from "./warm_up.ts";

async function warmUpDirs(tmp: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(tmp)) {
    if (entry.name.startsWith("tml-puppet-warm-up-")) names.push(entry.name);
  }
  return names;
}

Deno.test("the puppet's warm-up runs its rehearsal job to the end and leaves nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tml-warm-up-test-" });
  const messages: string[] = [];
  const base = createLogger("test", "error");
  const log: Logger = {
    ...base,
    warn: (message, fields) => messages.push(`warn ${message} ${JSON.stringify(fields)}`),
    debug: (message) => messages.push(`debug ${message}`),
  };
  try {
    await warmUp(log, tmp);
    assertEquals(messages, ["debug warmed up"]);
    assertEquals(await warmUpDirs(tmp), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a warm-up that cannot even start is logged and does not throw", async () => {
  const warnings: string[] = [];
  const log: Logger = {
    ...createLogger("test", "error"),
    warn: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields)}`),
  };
  await warmUp(log, "/nonexistent/tml-warm-up-test");
  assertEquals(warnings.length, 1);
  assertEquals(warnings[0].startsWith("the warm-up failed; going on without it"), true);
});
