/**
 * The connection against a minimal switchboard peer written here over a real websocket: it
 * speaks the documented protocol step by step so each test can misbehave exactly as needed.
 */
import { assert, assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import type { HeldJob, JobSpec } from "../../lib/protocol/supervisor.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import {
  type ConnectionHandlers,
  RefusedError,
  SwitchboardConnection,
  type Timers,
} from "./connection.ts";

const SUPERVISOR_ID = "9a8b7c6d-5e4f-4321-8fed-cba987654321";
const JOB_ID = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9";
const TOKEN = "supervisor-token-value";
const log = createLogger("test:connection", "error");

// deno-lint-ignore no-explicit-any
type Frame = any;

/** One websocket the peer accepted: what it received, in order, and a way to answer. */
class PeerSocket {
  readonly received: Frame[] = [];
  #waiters: Array<() => void> = [];
  closed = false;

  constructor(readonly socket: WebSocket, readonly authorization: string | null) {
    socket.onmessage = (event) => {
      this.received.push(JSON.parse(String(event.data)));
      for (const wake of this.#waiters.splice(0)) wake();
    };
    socket.onclose = () => {
      this.closed = true;
      for (const wake of this.#waiters.splice(0)) wake();
    };
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** The next received frame matching `type` after `from`, waiting for it. */
  async next(type: string, from = 0): Promise<Frame> {
    for (let i = 0; i < 200; i++) {
      const found = this.received.slice(from).find((frame) => frame.type === type);
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 25);
      });
    }
    throw new Error(`no ${type} frame; got ${JSON.stringify(this.received)}`);
  }

  welcome(keepaliveMs = 60_000): void {
    this.send({
      type: "welcome",
      protocol_version: PROTOCOL_VERSION,
      supervisor_id: SUPERVISOR_ID,
      keepalive_interval_ms: keepaliveMs,
    });
  }
}

/** A switchboard endpoint at `/api/v1/supervisors/connect`; `accepting: false` answers 503. */
class TestPeer {
  readonly sockets: PeerSocket[] = [];
  accepting = true;
  #waiters: Array<() => void> = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
      if (new URL(request.url).pathname !== "/api/v1/supervisors/connect" || !this.accepting) {
        return new Response("no", { status: 503 });
      }
      const authorization = request.headers.get("authorization");
      const { socket, response } = Deno.upgradeWebSocket(request);
      this.sockets.push(new PeerSocket(socket, authorization));
      for (const wake of this.#waiters.splice(0)) wake();
      return response;
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async socket(index: number): Promise<PeerSocket> {
    for (let i = 0; i < 200 && this.sockets.length <= index; i++) {
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 25);
      });
    }
    assert(this.sockets.length > index, `no connection number ${index + 1}`);
    return this.sockets[index];
  }

  async stop(): Promise<void> {
    for (const peer of this.sockets) if (!peer.closed) peer.socket.close();
    await this.#server.shutdown();
  }
}

function connect(
  peer: TestPeer,
  handlers: Partial<ConnectionHandlers> = {},
  timers?: Timers,
): { connection: SwitchboardConnection; running: Promise<void> } {
  const connection = new SwitchboardConnection({
    switchboardUrl: peer.url,
    supervisorId: SUPERVISOR_ID,
    token: TOKEN,
    tags: ["board:test"],
    driver: "local",
    log,
    minBackoffMs: 10,
    maxBackoffMs: 40,
    timers,
  }, {
    heldJobs: () => [],
    startJob: () => ({ ok: true }),
    stopJob: () => Promise.resolve(),
    ...handlers,
  });
  return { connection, running: connection.run() };
}

const JOB: JobSpec = {
  job_id: JOB_ID,
  image_id: "b".repeat(64),
  parameters: {},
  ssh_keys: [],
  workload: null,
  timeout_ms: 60_000,
};

Deno.test("SwitchboardConnection says hello with its token and held jobs, and acks commands", async () => {
  const peer = new TestPeer();
  const held: HeldJob[] = [{ job_id: JOB_ID, state: "ready", sub_state: null }];
  const started: string[] = [];
  const stopped: string[] = [];
  const { connection, running } = connect(peer, {
    heldJobs: () => held,
    startJob: (job) => {
      started.push(job.job_id);
      return job.job_id === JOB_ID ? { ok: true } : { ok: false, message: "busy" };
    },
    stopJob: (jobId, reason) => Promise.resolve(void stopped.push(`${jobId} ${reason}`)),
  });
  try {
    const socket = await peer.socket(0);
    assertEquals(socket.authorization, `Bearer ${TOKEN}`);
    const hello = await socket.next("hello");
    assertEquals(hello.protocol_version, PROTOCOL_VERSION);
    assertEquals(hello.supervisor_id, SUPERVISOR_ID);
    assertEquals(hello.driver, "local");
    assertEquals(hello.tags, ["board:test"]);
    assertEquals(hello.jobs, held);
    socket.welcome();
    socket.send({ type: "start_job", msg_id: 7, job: JOB });
    assertEquals(await socket.next("ack"), { type: "ack", msg_id: 7, ok: true });
    const other = { ...JOB, job_id: crypto.randomUUID() };
    const count = socket.received.length;
    socket.send({ type: "start_job", msg_id: 8, job: other });
    const refused = await socket.next("ack", count);
    assertEquals(refused, {
      type: "ack",
      msg_id: 8,
      ok: false,
      error: { code: "busy", message: "busy" },
    });
    const before = socket.received.length;
    socket.send({ type: "stop_job", msg_id: 9, job_id: JOB_ID, reason: "canceled" });
    assertEquals(await socket.next("ack", before), { type: "ack", msg_id: 9, ok: true });
    socket.send({ type: "ping", nonce: 42 });
    assertEquals(await socket.next("pong"), { type: "pong", nonce: 42 });
    assertEquals(started, [JOB_ID, other.job_id]);
    assertEquals(stopped, [`${JOB_ID} canceled`]);
  } finally {
    connection.close();
    await running;
    await peer.stop();
  }
});

Deno.test("SwitchboardConnection resends unacknowledged updates in order after a reconnect", async () => {
  const peer = new TestPeer();
  const { connection, running } = connect(peer);
  try {
    // Reported before any connection: they wait in the outbox.
    connection.report({ job_id: JOB_ID, state: "initializing", sub_state: null });
    const first = await peer.socket(0);
    await first.next("hello");
    first.welcome();
    const initializing = await first.next("job_update");
    first.send({ type: "ack", msg_id: initializing.msg_id, ok: true });
    connection.report({ job_id: JOB_ID, state: "ready", sub_state: null });
    const ready = await first.next("job_update", first.received.indexOf(initializing) + 1);
    first.send({ type: "ack", msg_id: ready.msg_id, ok: true });
    await until(() => connection.pending === 0);
    // The end of the job goes unacknowledged, and the connection drops.
    connection.report({
      job_id: JOB_ID,
      state: "terminating",
      exit_status: "workload_finished_success",
      message: "exit code 0",
    });
    connection.report({ job_id: JOB_ID, state: "terminated", sub_state: null });
    await until(() => first.received.filter((f) => f.type === "job_update").length === 4);
    first.socket.close();

    const second = await peer.socket(1);
    const hello = await second.next("hello");
    // The job is named in the state the switchboard acknowledged, not as terminated.
    assertEquals(hello.jobs, [{ job_id: JOB_ID, state: "ready", sub_state: null }]);
    second.welcome();
    await until(() => second.received.filter((f) => f.type === "job_update").length === 2);
    const resent = second.received.filter((f) => f.type === "job_update");
    assertEquals(resent.map((f) => f.state), ["terminating", "terminated"]);
    assertEquals(resent[0].exit_status, "workload_finished_success");
    assert(resent[0].msg_id < resent[1].msg_id);
    assertEquals(await connection.flush(50), false, "flush() did not wait for the acks");
    for (const frame of resent) second.send({ type: "ack", msg_id: frame.msg_id, ok: true });
    assertEquals(await connection.flush(5_000), true);
    assertEquals(connection.pending, 0);
  } finally {
    connection.close();
    await running;
    await peer.stop();
  }
});

Deno.test("SwitchboardConnection ignores garbage and keeps working", async () => {
  const peer = new TestPeer();
  const started: string[] = [];
  const { connection, running } = connect(peer, {
    startJob: (job) => (started.push(job.job_id), { ok: true }),
  });
  try {
    const socket = await peer.socket(0);
    await socket.next("hello");
    socket.welcome();
    socket.send("this is not JSON {");
    socket.send({ type: "launch_missiles" });
    socket.send({ type: "start_job", msg_id: 1, job: { job_id: "not-a-uuid" } });
    socket.send({ type: "ack", msg_id: 12345, ok: true }); // Acknowledges nothing we sent.
    socket.send({ type: "ping", nonce: 1 });
    assertEquals(await socket.next("pong"), { type: "pong", nonce: 1 });
    assertEquals(started, []);
    assertEquals(peer.sockets.length, 1, "garbage made it reconnect");
  } finally {
    connection.close();
    await running;
    await peer.stop();
  }
});

Deno.test("SwitchboardConnection.run() fails with the switchboard's message when refused", async () => {
  const peer = new TestPeer();
  const { running } = connect(peer);
  try {
    const socket = await peer.socket(0);
    await socket.next("hello");
    socket.send({
      type: "refused",
      code: "refused",
      message:
        "Cannot accept peer: it speaks protocol version 1, this switchboard needs at least 3",
    });
    const error = await assertRejects(() => running, RefusedError);
    assert(error.message.includes("protocol version 1"), error.message);
    assert(error.message.includes("at least 3"), error.message);
    assertEquals(peer.sockets.length, 1, "it retried after a refusal");
  } finally {
    await peer.stop();
  }
});

Deno.test("SwitchboardConnection reconnects when the switchboard is silent for three keepalive intervals", async () => {
  const peer = new TestPeer();
  const { connection, running } = connect(peer);
  try {
    const first = await peer.socket(0);
    await first.next("hello");
    first.welcome(20);
    // The peer never answers the pings it gets.
    await first.next("ping");
    const second = await peer.socket(1);
    await second.next("hello");
    assert(first.closed, "the silent connection was left open");
  } finally {
    connection.close();
    await running;
    await peer.stop();
  }
});

Deno.test("SwitchboardConnection backs off exponentially with jitter, capped, while the switchboard is away", async () => {
  const peer = new TestPeer();
  peer.accepting = false;
  const delays: number[] = [];
  let jitter = 0.5;
  const timers: Timers = {
    now: () => Date.now(),
    random: () => jitter,
    // Reconnect delays are recorded and cut short; the welcome timeout (15 s) runs as is.
    setTimeout: (callback, ms) => {
      if (ms >= 15_000) return setTimeout(callback, ms);
      delays.push(ms);
      return setTimeout(callback, 1);
    },
    clearTimeout: (id) => clearTimeout(id),
    setInterval: (callback, ms) => setInterval(callback, ms),
    clearInterval: (id) => clearInterval(id),
  };
  const { connection, running } = connect(peer, {}, timers);
  try {
    await until(() => delays.length >= 5);
    // random() = 0.5 means no jitter: 10, 20, 40, then capped at 40.
    assertEquals(delays.slice(0, 5), [10, 20, 40, 40, 40]);
    jitter = 0;
    const seen = delays.length;
    await until(() => delays.length > seen);
    assertEquals(delays[seen], 20, "jitter takes the delay down to half");
    // Once the switchboard is back, it connects.
    peer.accepting = true;
    const socket = await peer.socket(0);
    await socket.next("hello");
  } finally {
    connection.close();
    await running;
    await peer.stop();
  }
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert(condition(), "condition not reached");
}
