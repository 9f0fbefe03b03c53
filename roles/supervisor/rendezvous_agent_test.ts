/**
 * The rendezvous agent against protocol peers: a switchboard that answers grant requests and a
 * rendezvous server that speaks `lib/protocol/rendezvous.ts`, both real HTTP/websocket servers,
 * and a real echo server as the job's host.
 */
import { assertEquals, assertMatch } from "../../lib/testing/asserts.ts";
import { SwitchboardClient } from "../../lib/client/switchboard_client.ts";
import { createLogger } from "../../lib/log.ts";
import { AgentMessage, DATA_HEADER_BYTES } from "../../lib/protocol/rendezvous.ts";
import type { RendezvousGrantRequest } from "../../lib/protocol/api.ts";
import { RendezvousAgent } from "./rendezvous_agent.ts";

const JOB = "6f1c9a52-6a3e-4a8e-9d1e-2f6a0c1b2d3e";
const SUPERVISOR = "0b7e2c1d-3f4a-4b5c-8d9e-0f1a2b3c4d5e";
const TICKET = "A".repeat(43);

/** A queue that a test awaits items of, in order. */
class Inbox<T> {
  #items: T[] = [];
  #waiters: Array<() => void> = [];
  push(item: T) {
    this.#items.push(item);
    for (const wake of this.#waiters.splice(0)) wake();
  }
  async next(match: (item: T) => boolean = () => true): Promise<T> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const index = this.#items.findIndex(match);
      if (index >= 0) return this.#items.splice(index, 1)[0];
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    throw new Error("nothing arrived in time");
  }
}

function peers() {
  const grants = new Inbox<RendezvousGrantRequest>();
  let grantCount = 0;
  const switchboard = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (r) => {
      const request = await r.json() as RendezvousGrantRequest;
      grants.push(request);
      return Response.json({
        grant: `grant-${++grantCount}-${request.job_id}`,
        supervisor_id: SUPERVISOR,
        job_id: request.job_id,
        expires_at: new Date(Date.now() + 600_000).toISOString(),
      });
    },
  );
  const messages = new Inbox<AgentMessage>();
  const sockets: WebSocket[] = [];
  const data = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dataConns = new Inbox<Deno.Conn>();
  (async () => {
    for await (const conn of data) dataConns.push(conn);
  })().catch(() => {});
  const rendezvous = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (r) => {
    const { socket, response } = Deno.upgradeWebSocket(r);
    sockets.push(socket);
    socket.onmessage = (event) => {
      const message = AgentMessage.parse(JSON.parse(event.data));
      messages.push(message);
      if (message.type === "hello") {
        socket.send(JSON.stringify({
          type: "welcome",
          protocol_version: 3,
          data_port: data.addr.port,
          data_tls: false,
          public_url: "ws://rdv.example:7300",
          keepalive_interval_ms: 10_000,
        }));
      }
      if (message.type === "expose") {
        socket.send(JSON.stringify({
          type: "exposed",
          msg_id: message.msg_id,
          ok: true,
          job_id: message.services.length > 0 ? JOB : null,
          endpoints: message.services.map((s) => ({
            ...s,
            host: "rdv.example",
            public_port: 7400,
          })),
        }));
      }
    };
    return response;
  });
  return {
    grants,
    messages,
    dataConns,
    sockets,
    switchboardUrl: `http://127.0.0.1:${switchboard.addr.port}`,
    rendezvousUrl: `http://127.0.0.1:${rendezvous.addr.port}`,
    async close() {
      for (const socket of sockets) socket.close();
      data.close();
      await switchboard.shutdown();
      await rendezvous.shutdown();
    },
  };
}

function echoHost() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buffer = new Uint8Array(1024);
        for (let n; (n = await conn.read(buffer)) !== null;) {
          await conn.write(buffer.subarray(0, n));
        }
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return listener;
}

function startAgent(p: ReturnType<typeof peers>, hostPort: number) {
  const agent = new RendezvousAgent({
    url: p.rendezvousUrl,
    services: [{ name: "ssh", port: hostPort }],
    switchboard: new SwitchboardClient(p.switchboardUrl, "supervisor-token"),
    driver: {
      hostAddress: (jobId, port) => jobId === JOB ? { hostname: "127.0.0.1", port } : undefined,
    },
    log: createLogger("test", "error"),
    minBackoffMs: 20,
  });
  const running = agent.run();
  return { agent, stop: async () => (await agent.stop(1_000), await running) };
}

Deno.test({
  name:
    "RendezvousAgent exposes a job once ready, reports its endpoints, and withdraws it at its end",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const p = peers();
    const host = echoHost();
    const { agent, stop } = startAgent(p, host.addr.port);
    const hello = await p.messages.next((m) => m.type === "hello");
    assertEquals(hello.type === "hello" && hello.grant, "grant-1-null");
    agent.onJobReport({ job_id: JOB, state: "ready" });
    const expose = await p.messages.next((m) => m.type === "expose");
    assertEquals(expose.type === "expose" && expose.services, [{
      name: "ssh",
      port: host.addr.port,
    }]);
    // The grant for the expose, then the report of what the rendezvous server gave.
    await p.grants.next((g) => g.job_id === JOB && g.endpoints.length === 0);
    const report = await p.grants.next((g) => g.endpoints.length === 1);
    assertEquals(report.rendezvous_url, "ws://rdv.example:7300");
    assertEquals(report.endpoints[0].public_port, 7400);

    agent.onJobReport({ job_id: JOB, state: "terminating" });
    const withdraw = await p.messages.next((m) => m.type === "expose");
    assertEquals(withdraw.type === "expose" && withdraw.services, []);
    await p.grants.next((g) => g.job_id === null);
    await stop();
    host.close();
    await p.close();
  },
});

Deno.test({
  name: "RendezvousAgent brings a user connection through to the host, or says why it cannot",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const p = peers();
    const host = echoHost();
    const { agent, stop } = startAgent(p, host.addr.port);
    await p.messages.next((m) => m.type === "hello");
    agent.onJobReport({ job_id: JOB, state: "ready" });
    await p.messages.next((m) => m.type === "expose");
    const send = (message: unknown) => p.sockets.at(-1)!.send(JSON.stringify(message));

    send({ type: "open", ticket: TICKET, job_id: JOB, port: host.addr.port });
    const data = await p.dataConns.next();
    const header = new Uint8Array(DATA_HEADER_BYTES);
    for (let got = 0; got < header.length;) got += (await data.read(header.subarray(got)))!;
    assertEquals(new TextDecoder().decode(header), `TMLD1 ${TICKET}\n`);
    await data.write(new TextEncoder().encode("ping"));
    const echoed = new Uint8Array(4);
    for (let got = 0; got < 4;) got += (await data.read(echoed.subarray(got)))!;
    assertEquals(new TextDecoder().decode(echoed), "ping");

    send({ type: "open", ticket: TICKET, job_id: JOB, port: 1 });
    const unexposed = await p.messages.next((m) => m.type === "open_failed");
    assertEquals(
      unexposed.type === "open_failed" && unexposed.message,
      `port 1 of job "${JOB}" is not exposed by this supervisor`,
    );
    host.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    send({ type: "open", ticket: TICKET, job_id: JOB, port: host.addr.port });
    const down = await p.messages.next((m) => m.type === "open_failed");
    assertMatch(
      down.type === "open_failed" ? down.message : "",
      new RegExp(`^cannot reach port ${host.addr.port} of the job's host: `),
    );
    // The job's end cuts the connection it carried.
    agent.onJobReport({ job_id: JOB, state: "terminated" });
    assertEquals(await data.read(new Uint8Array(1)), null);
    data.close();
    await stop();
    await p.close();
  },
});

Deno.test({
  name: "RendezvousAgent reconnects when its websocket drops and exposes the job again",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const p = peers();
    const host = echoHost();
    const { agent, stop } = startAgent(p, host.addr.port);
    await p.messages.next((m) => m.type === "hello");
    agent.onJobReport({ job_id: JOB, state: "ready" });
    await p.messages.next((m) => m.type === "expose");
    p.sockets.at(-1)!.close();
    const hello = await p.messages.next((m) => m.type === "hello");
    // The new hello carries a grant for the job it runs.
    assertMatch(hello.type === "hello" ? hello.grant : "", new RegExp(`-${JOB}$`));
    const expose = await p.messages.next((m) => m.type === "expose");
    assertEquals(expose.type === "expose" && expose.services.length, 1);
    await stop();
    host.close();
    await p.close();
  },
});
