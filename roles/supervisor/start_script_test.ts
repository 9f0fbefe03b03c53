import { assertEquals, assertRejects, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import { HostStartError } from "./host_driver.ts";
import { runStartScript } from "./start_script.ts";

const log = createLogger("test:start-script", "warn");

async function withScript(body: string, fn: (script: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/start.sh`;
    await Deno.writeTextFile(script, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    await fn(script);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runStartScript() returns the variables the script sets, with its environment", () =>
  withScript(
    'echo "powering on board"\necho "tml-set-variable:usb_bus=$TML_JOB_ID"\n' +
      'echo "tml-set-variable:usb_addr=7=x"',
    async (script) => {
      const variables = await runStartScript({
        script,
        env: { TML_JOB_ID: "3" },
        signal: new AbortController().signal,
        log,
      });
      assertEquals(variables, { usb_bus: "3", usb_addr: "7=x" });
    },
  ));

Deno.test("runStartScript() fails the start with the script's exit code and stderr", () =>
  withScript("echo 'no board attached' >&2; exit 4", async (script) => {
    const error = await assertRejects(
      () => runStartScript({ script, env: {}, signal: new AbortController().signal, log }),
      HostStartError,
    );
    assertStringIncludes(error.message, "exited with code 4: no board attached");
  }));

Deno.test("runStartScript() refuses a malformed variable line", () =>
  withScript('echo "tml-set-variable:Bad Key=1"', async (script) => {
    const error = await assertRejects(
      () => runStartScript({ script, env: {}, signal: new AbortController().signal, log }),
      HostStartError,
    );
    assertStringIncludes(error.message, '"tml-set-variable:Bad Key=1"');
  }));

Deno.test("runStartScript() ends a script that runs past its timeout", () =>
  withScript("sleep 30", async (script) => {
    const error = await assertRejects(
      () =>
        runStartScript({
          script,
          env: {},
          signal: new AbortController().signal,
          log,
          timeoutMs: 200,
        }),
      HostStartError,
    );
    assertStringIncludes(error.message, "did not finish within 200 ms");
  }));
