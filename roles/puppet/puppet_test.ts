/**
 * The puppet's silence watchdog, against a supervisor scripted over a real TCP socket: the
 * limit counts from the answer to `auth`, so a slow authentication (a warm-start snapshot sits
 * on disk between `auth` and `restored`) is not mistaken for a silent supervisor.
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

Deno.test("puppet: a slow answer to auth does not count as the supervisor's silence", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tml-puppet-test-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const puppet = new Puppet({
    channel: { kind: "tcp", hostname: "127.0.0.1", port: listener.addr.port },
    readSecret: () => Promise.resolve("secret"),
    onRestored: () => {},
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
  try {
    const connection = await listener.accept();
    connections++;
    const accepting = (async () => {
      for await (const _ of listener) connections++;
    })().catch(() => {});
    const supervisor = new FramedChannel<typeof PuppetMessage, SupervisorToPuppet>(
      connection,
      PuppetMessage,
      { maxBytes: MAX_PUPPET_FRAME_BYTES },
    );
    assertEquals((await supervisor.receive())?.type, "auth");
    // Longer than the silence limit (3 heartbeat intervals) before the answer.
    await new Promise((resolve) => setTimeout(resolve, 5 * HEARTBEAT_MS));
    await supervisor.send({
      type: "auth_ok",
      job: { job_id: crypto.randomUUID(), parameters: {}, ssh_keys: [], workload: null },
      heartbeat_interval_ms: HEARTBEAT_MS,
      output_offsets: { stdout: 0, stderr: 0 },
    });
    assertEquals((await supervisor.receive())?.type, "ready");
    // Answer heartbeats for a while; the puppet must keep this one connection.
    const until = performance.now() + 10 * HEARTBEAT_MS;
    while (performance.now() < until) {
      const message = await supervisor.receive();
      assertEquals(message?.type, "heartbeat", "the puppet dropped the channel");
      await supervisor.send({ type: "heartbeat" });
    }
    assertEquals(connections, 1);
    await supervisor.send({ type: "shutdown", reason: "test over" });
    await running;
    listener.close();
    await accepting;
  } finally {
    puppet.stop();
    try {
      listener.close();
    } catch {
      // Closed above.
    }
    await running.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
