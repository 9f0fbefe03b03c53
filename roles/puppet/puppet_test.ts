/**
 * The puppet against a supervisor scripted over a real TCP socket: its silence watchdog (the
 * limit counts from the answer to `auth`, so a slow authentication, e.g. a warm-start snapshot
 * sitting on disk between `auth` and `restored`, is not mistaken for a silent supervisor) and
 * its warm-up (once, at the first `restored`, before it authenticates again).
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import { FramedChannel } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  PuppetMessage,
  type SupervisorToPuppet,
} from "../../lib/protocol/puppet.ts";
import { Puppet } from "./puppet.ts";

const HEARTBEAT_MS = 50;

type ScriptedSupervisor = FramedChannel<typeof PuppetMessage, SupervisorToPuppet>;

/**
 * Runs a puppet against `script`, the supervisor's side of its first connection; `script` ends
 * by sending `shutdown`. Returns how many connections the puppet made and what it logged.
 */
async function withPuppet(
  script: (supervisor: ScriptedSupervisor, events: string[], puppet: Puppet) => Promise<void>,
): Promise<{ connections: number; events: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "tml-puppet-test-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const events: string[] = [];
  const puppet = new Puppet({
    channel: { kind: "tcp", hostname: "127.0.0.1", port: listener.addr.port },
    readSecret: () => Promise.resolve("secret"),
    onRestored: () => void events.push("restored"),
    warmUp: async () => {
      events.push("warm-up");
      await new Promise((resolve) => setTimeout(resolve, 100));
      events.push("warm-up done");
    },
    root: `${dir}/root`,
    authorizedKeys: `${dir}/authorized_keys`,
    workdir: dir,
    controlSocket: `${dir}/control.sock`,
    reconnectTimeoutMs: 5_000,
    stopGraceMs: 100,
    echoWorkloadOutput: false,
    log: createLogger("test:puppet", "error"),
  });
  const running = puppet.run();
  let connections = 0;
  const accepting = (async () => {
    for await (const connection of listener) {
      if (connections++ > 0) continue;
      const supervisor: ScriptedSupervisor = new FramedChannel(connection, PuppetMessage, {
        maxBytes: MAX_PUPPET_FRAME_BYTES,
      });
      await script(supervisor, events, puppet);
    }
  })();
  // A failing script fails the test at once, rather than leaving it waiting for the puppet.
  const scriptFailed = accepting.then(() => new Promise<never>(() => {}));
  try {
    await Promise.race([running, scriptFailed]);
    return { connections, events };
  } finally {
    // The puppet may still be connected on failure: stop() ends it and the run with it (if
    // stop() is what is broken, the wait is bounded).
    puppet.stop();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      running.catch(() => {}),
      new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
    ]);
    clearTimeout(timer);
    listener.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

function authOk(): SupervisorToPuppet {
  return {
    type: "auth_ok",
    job: { job_id: crypto.randomUUID(), parameters: {}, ssh_keys: [], workload: null },
    heartbeat_interval_ms: HEARTBEAT_MS,
    output_offsets: { stdout: 0, stderr: 0 },
  };
}

function restored(): SupervisorToPuppet {
  return { type: "restored", time_ms: Date.now(), entropy: btoa("e".repeat(32)) };
}

Deno.test("puppet: a slow answer to auth does not count as the supervisor's silence", async () => {
  const { connections, events } = await withPuppet(async (supervisor) => {
    assertEquals((await supervisor.receive())?.type, "auth");
    // Longer than the silence limit (3 heartbeat intervals) before the answer.
    await new Promise((resolve) => setTimeout(resolve, 5 * HEARTBEAT_MS));
    await supervisor.send(authOk());
    assertEquals((await supervisor.receive())?.type, "ready");
    // Answer heartbeats for a while; the puppet must keep this one connection.
    const until = performance.now() + 10 * HEARTBEAT_MS;
    while (performance.now() < until) {
      const message = await supervisor.receive();
      assertEquals(message?.type, "heartbeat", "the puppet dropped the channel");
      await supervisor.send({ type: "heartbeat" });
    }
    await supervisor.send({ type: "shutdown", reason: "test over" });
  });
  assertEquals(connections, 1);
  assertEquals(events, [], "a cold start is neither restored nor warmed up");
});

Deno.test("puppet: the first restored warms it up before it authenticates again, once", async () => {
  const { events } = await withPuppet(async (supervisor, events) => {
    assertEquals((await supervisor.receive())?.type, "auth");
    for (let round = 0; round < 2; round++) {
      await supervisor.send(restored());
      assertEquals((await supervisor.receive())?.type, "auth");
      events.push("auth");
    }
    await supervisor.send(authOk());
    assertEquals((await supervisor.receive())?.type, "ready");
    await supervisor.send({ type: "shutdown", reason: "test over" });
  });
  assertEquals(events, ["restored", "warm-up", "warm-up done", "auth", "restored", "auth"]);
});

Deno.test("puppet: stop() ends a session still waiting for the answer to auth", async () => {
  const { connections } = await withPuppet(async (supervisor, _events, puppet) => {
    assertEquals((await supervisor.receive())?.type, "auth");
    puppet.stop(); // No answer comes: run() must end all the same.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      supervisor.receive(),
      new Promise<"still open">((resolve) =>
        timer = setTimeout(() => resolve("still open"), 2_000)
      ),
    ]);
    clearTimeout(timer);
    assertEquals(closed, undefined, "the puppet closed its connection");
  });
  assertEquals(connections, 1);
});
