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
  const env = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  const messages: string[] = [];
  const base = createLogger("test", "error");
  const log: Logger = {
    ...base,
    warn: (message, fields) => messages.push(`warn ${message} ${JSON.stringify(fields)}`),
    debug: (message) => messages.push(`debug ${message}`),
  };
  try {
    await warmUp(log);
    assertEquals(messages, ["debug warmed up"]);
    assertEquals(await warmUpDirs(tmp), []);
  } finally {
    if (env === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", env);
    await Deno.remove(tmp, { recursive: true });
  }
});
