import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import { FramedChannel } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  type PuppetJob,
  type PuppetMessage,
  SupervisorToPuppet,
} from "../../lib/protocol/puppet.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { HostEventLog } from "./host_driver_conformance.ts";
import { generatePuppetSecret, PuppetChannel } from "./puppet_channel.ts";

const JOB: PuppetJob = {
  job_id: "2f1e0d9c-8b7a-4695-a483-7261504f3e2d",
  parameters: { token: { value: "very-secret-value", secret: true } },
  ssh_keys: [],
  workload: "true",
};

type PuppetEnd = FramedChannel<typeof SupervisorToPuppet, PuppetMessage>;

/** A supervisor-side channel on a real TCP listener, and a way to connect test puppets. */
function setUp(options: { heartbeatIntervalMs?: number; restored?: boolean } = {}) {
  const secret = generatePuppetSecret();
  const events = new HostEventLog();
  const logLines: string[] = [];
  const log = createLogger("test", "debug");
  const channel = new PuppetChannel({
    secret,
    job: JOB,
    events,
    log: {
      ...log,
      warn: (message, fields) => logLines.push(`${message} ${JSON.stringify(fields)}`),
    },
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000,
    restored: options.restored,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const connection of listener) served.push(channel.serve(connection));
  })().catch(() => {});
  const puppets: PuppetEnd[] = [];
  const connect = async (): Promise<PuppetEnd> => {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const puppet: PuppetEnd = new FramedChannel(connection, SupervisorToPuppet, {
      maxBytes: MAX_PUPPET_FRAME_BYTES,
    });
    puppets.push(puppet);
    return puppet;
  };
  const tearDown = async () => {
    channel.close();
    for (const puppet of puppets) puppet.close();
    listener.close();
    await accepting;
    await Promise.all(served);
  };
  return { secret, events, logLines, channel, connect, tearDown };
}

function output(stream: "stdout" | "stderr", offset: number, text: string): PuppetMessage {
  return {
    type: "workload_output",
    stream,
    offset,
    data: Buffer.from(text).toString("base64"),
  };
}

Deno.test("PuppetChannel gives an authenticated puppet its job and turns its frames into events", async () => {
  const t = setUp();
  try {
    const puppet = await t.connect();
    await puppet.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    const answer = await puppet.receive();
    assert(answer?.type === "auth_ok", JSON.stringify(answer));
    assertEquals(answer.job, JOB);
    assertEquals(answer.output_offsets, { stdout: 0, stderr: 0 });
    await puppet.send({ type: "ready" });
    await puppet.send(output("stdout", 0, "hello "));
    await puppet.send(output("stderr", 0, "warning\n"));
    await puppet.send({ type: "workload_finished", outcome: "error", exit_code: 2 });
    await puppet.send({ type: "heartbeat" });
    assertEquals(await puppet.receive(), { type: "heartbeat" });
    await t.events.waitFor("workloadFinished", 5_000);
    assertEquals(t.events.events.map((event) => event.type), ["ready", "workloadFinished"]);
    assertEquals(t.events.outputText, "hello warning\n");
    await t.channel.shutdown("test over");
    assertEquals(await puppet.receive(), { type: "shutdown", reason: "test over" });
  } finally {
    await t.tearDown();
  }
});

Deno.test("PuppetChannel tells a resumed puppet it was restored, once, before it authenticates", async () => {
  const t = setUp({ restored: true });
  try {
    const puppet = await t.connect();
    const before = Date.now();
    const restored = await puppet.receive();
    assert(restored?.type === "restored", JSON.stringify(restored));
    assert(restored.time_ms >= before && restored.time_ms <= Date.now(), `${restored.time_ms}`);
    assertEquals(Buffer.from(restored.entropy, "base64").length, 32);
    await puppet.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    assertEquals((await puppet.receive())?.type, "auth_ok");
    // A puppet that reconnects later is not told again, and each resume gets fresh entropy.
    const again = await t.connect();
    await again.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    assertEquals((await again.receive())?.type, "auth_ok");
    const other = setUp({ restored: true });
    try {
      const otherRestored = await (await other.connect()).receive();
      assert(otherRestored?.type === "restored");
      assert(otherRestored.entropy !== restored.entropy);
    } finally {
      await other.tearDown();
    }
  } finally {
    await t.tearDown();
  }
});

Deno.test("PuppetChannel refuses a wrong secret and an old protocol version, and reports nothing", async () => {
  const t = setUp();
  try {
    const wrong = await t.connect();
    await wrong.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: "guess" });
    await wrong.send({ type: "ready" });
    const refusal = await wrong.receive();
    assertEquals(refusal, {
      type: "auth_failed",
      message: "Cannot authenticate puppet: wrong secret",
    });
    assertEquals(await wrong.receive(), undefined, "the connection stayed open");

    const old = await t.connect();
    await old.send({ type: "auth", protocol_version: 0, secret: t.secret });
    const tooOld = await old.receive();
    assert(tooOld?.type === "auth_failed");
    assert(tooOld.message.includes("protocol version 0"), tooOld.message);
    assert(tooOld.message.includes(`speaks ${PROTOCOL_VERSION}`), tooOld.message);

    const rude = await t.connect();
    await rude.send({ type: "ready" });
    assertEquals((await rude.receive())?.type, "auth_failed");

    assertEquals(t.events.events, []);
    assert(!t.logLines.join("\n").includes(t.secret), "the secret was logged");
    assert(!t.logLines.join("\n").includes("guess"), "an offered secret was logged");
  } finally {
    await t.tearDown();
  }
});

Deno.test("PuppetChannel lets a reconnecting puppet resume its output without repeats", async () => {
  const t = setUp();
  try {
    const first = await t.connect();
    await first.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    await first.receive();
    await first.send(output("stdout", 0, "line 1\n"));
    await first.send({ type: "ready" });
    await t.events.waitFor("ready", 5_000);

    // The puppet restarts: its new connection replaces the old one.
    const second = await t.connect();
    await second.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    const resumed = await second.receive();
    assert(resumed?.type === "auth_ok");
    assertEquals(resumed.output_offsets, { stdout: 7, stderr: 0 });
    assertEquals(await first.receive(), undefined, "the old connection was not closed");
    // It repeats a little (an overlapping chunk) and goes on.
    await second.send(output("stdout", 0, "line 1\nline 2\n"));
    await second.send(output("stdout", 7, "line 2\n"));
    await second.send(output("stdout", 14, "line 3\n"));
    await second.send({ type: "workload_finished", outcome: "success", exit_code: 0 });
    await t.events.waitFor("workloadFinished", 5_000);
    assertEquals(t.events.outputText, "line 1\nline 2\nline 3\n");
  } finally {
    await t.tearDown();
  }
});

Deno.test("PuppetChannel reports a hung host when the puppet goes silent", async () => {
  const t = setUp({ heartbeatIntervalMs: 40 });
  try {
    const puppet = await t.connect();
    await puppet.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    await puppet.receive();
    await puppet.send({ type: "ready" });
    // Heartbeats keep it alive...
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 40));
      await puppet.send({ type: "heartbeat" });
    }
    assertEquals(t.events.indexOf("hostLost"), -1);
    // ...and silence for three intervals ends it.
    const lost = await t.events.waitFor("hostLost", 2_000);
    assertEquals(lost.loss.kind, "unresponsive");
  } finally {
    await t.tearDown();
  }
});

Deno.test("PuppetChannel does not count the puppet's silence while it writes the job's files", async () => {
  const t = setUp({ heartbeatIntervalMs: 40 });
  try {
    const puppet = await t.connect();
    await puppet.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    assertEquals((await puppet.receive())?.type, "auth_ok");
    // Between auth_ok and ready the puppet sends nothing: far longer than three intervals.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assertEquals(t.events.indexOf("hostLost"), -1);
    await puppet.send({ type: "ready" });
    await t.events.waitFor("ready", 2_000);
    // From then on the heartbeats count.
    const lost = await t.events.waitFor("hostLost", 2_000);
    assertEquals(lost.loss.kind, "unresponsive");
  } finally {
    await t.tearDown();
  }
});

Deno.test("PuppetChannel reports nothing once shut down", async () => {
  const t = setUp();
  try {
    const puppet = await t.connect();
    await puppet.send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: t.secret });
    await puppet.receive();
    await t.channel.shutdown("job ended");
    await puppet.send({ type: "workload_finished", outcome: "success" });
    await puppet.send({ type: "heartbeat" });
    // Heartbeats are still answered, so the puppet does not reconnect while it shuts down.
    assertEquals((await puppet.receive())?.type, "shutdown");
    assertEquals(await puppet.receive(), { type: "heartbeat" });
    assertEquals(t.events.events, []);
  } finally {
    await t.tearDown();
  }
});
