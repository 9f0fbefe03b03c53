/**
 * The real `tml puppet` process against the supervisor's real end of the channel: it survives
 * its own restart (kill -9, started again with the same secret) without running the workload
 * twice, without losing or repeating output, and with the workload's true exit code; and it
 * ends its workload when told to shut down.
 */
import { assert, assertEquals, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import { HostEventLog } from "../../roles/supervisor/host_driver_conformance.ts";
import { generatePuppetSecret, PuppetChannel } from "../../roles/supervisor/puppet_channel.ts";
import { TmlProcess } from "../support/tml_process.ts";

const log = createLogger("test:puppet-restart", "warn");

async function setUp(workload: string) {
  const dir = await Deno.makeTempDir({ prefix: "tml-puppet-restart-" });
  const secret = generatePuppetSecret();
  await Deno.writeTextFile(`${dir}/secret`, secret, { mode: 0o600 });
  const events = new HostEventLog();
  const jobId = crypto.randomUUID();
  const channel = new PuppetChannel({
    secret,
    job: {
      job_id: jobId,
      parameters: { token: { value: "restart-secret-value", secret: true } },
      ssh_keys: [],
      workload,
    },
    events,
    log,
    heartbeatIntervalMs: 500,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const connection of listener) void channel.serve(connection);
  })().catch(() => {});
  const startPuppet = (port = listener.addr.port) =>
    TmlProcess.start([
      "puppet",
      "--channel",
      `tcp:127.0.0.1:${port}`,
      "--secret-file",
      `${dir}/secret`,
      "--root",
      `${dir}/root`,
      "--stop-grace",
      "500ms",
    ]);
  const tearDown = async () => {
    channel.close();
    listener.close();
    await accepting;
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, jobId, events, channel, startPuppet, tearDown, port: listener.addr.port };
}

/** Live processes whose environment names the job (the workload and its children). */
async function processesOfJob(jobId: string): Promise<number[]> {
  const found: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
      if (environ.split("\0").includes(`TML_JOB_ID=${jobId}`)) found.push(pid);
    } catch {
      // Gone already.
    }
  }
  return found;
}

function countOf(text: string, part: string): number {
  return text.split(part).length - 1;
}

Deno.test({
  name: "tml puppet survives kill -9 and a restart: the workload runs once and its result arrives",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await setUp(
      'echo started >> "$TML_PUPPET_ROOT/../runs"; echo one; sleep 2; echo two; exit 4',
    );
    let puppet = t.startPuppet();
    try {
      await t.events.waitFor("ready", 30_000);
      await t.events.waitForOutput("one\n", 10_000);
      await puppet.kill("SIGKILL");

      puppet = t.startPuppet();
      const finished = await t.events.waitFor("workloadFinished", 30_000);
      assertEquals(finished.result, { outcome: "error", exit_code: 4, message: "exit code 4" });
      assertEquals(t.events.outputText, "one\ntwo\n", "output lost or repeated");
      assertEquals(t.events.events.filter((event) => event.type === "ready").length, 2);
      const runs = await Deno.readTextFile(`${t.dir}/runs`);
      assertEquals(countOf(runs, "started"), 1, `the workload ran again: ${runs}`);
      assertEquals(t.events.indexOf("hostLost"), -1);

      await t.channel.shutdown("job ended");
      const status = await puppet.wait();
      assertEquals(status.code, 0, puppet.stderr);
      assert(!puppet.stderr.includes("restart-secret-value"), "a secret value was logged");
    } finally {
      await puppet.kill("SIGKILL");
      await t.tearDown();
    }
  },
});

Deno.test({
  name: "tml puppet keeps a result reported with tml puppet finish across its restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await setUp('tml puppet finish --success --message "by hand" && sleep 60');
    let puppet = t.startPuppet();
    try {
      await t.events.waitFor("workloadFinished", 30_000);
      await puppet.kill("SIGKILL");
      const before = t.events.events.length;
      puppet = t.startPuppet();
      // The restarted puppet says ready and the result again; the workload keeps running.
      while (t.events.events.slice(before).every((event) => event.type !== "workloadFinished")) {
        await t.events.waitFor("ready", 30_000);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const results = t.events.events.filter((event) => event.type === "workloadFinished");
      assertEquals(results.length, 2);
      assertEquals(results[1], {
        type: "workloadFinished",
        result: { outcome: "success", message: "by hand" },
      });
      await t.channel.shutdown("job ended");
      const status = await puppet.wait();
      assertEquals(status.code, 0, puppet.stderr);
      // Shutting down ended the workload's `sleep 60`.
      assertEquals(await processesOfJob(t.jobId), [], "the workload outlived the puppet");
    } finally {
      await puppet.kill("SIGKILL");
      await t.tearDown();
    }
  },
});

/** A TCP proxy in front of `port` whose connections a test can cut, like a network hiccup. */
function startProxy(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port });
      open.push(inbound, outbound);
      inbound.readable.pipeTo(outbound.writable).catch(() => {});
      outbound.readable.pipeTo(inbound.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    cut() {
      for (const connection of open.splice(0)) {
        try {
          connection.close();
        } catch {
          // Closed by the pipe already.
        }
      }
    },
    async stop() {
      this.cut();
      listener.close();
      await accepting;
    },
  };
}

Deno.test({
  name: "tml puppet reconnects after its connection drops and goes on where it was",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await setUp("echo one; sleep 1; echo two; exit 0");
    const proxy = startProxy(t.port);
    const puppet = t.startPuppet(proxy.port);
    try {
      await t.events.waitFor("ready", 30_000);
      await t.events.waitForOutput("one\n", 10_000);
      proxy.cut();
      const finished = await t.events.waitFor("workloadFinished", 30_000);
      assertEquals(finished.result.outcome, "success");
      assertEquals(t.events.outputText, "one\ntwo\n");
      assertEquals(t.events.events.filter((event) => event.type === "ready").length, 2);
      assertStringIncludes(puppet.stderr, "reconnecting");
      await t.channel.shutdown("job ended");
      assertEquals((await puppet.wait()).code, 0, puppet.stderr);
    } finally {
      await puppet.kill("SIGKILL");
      await proxy.stop();
      await t.tearDown();
    }
  },
});
