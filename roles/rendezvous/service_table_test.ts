import { assert, assertEquals, assertThrows } from "../../lib/testing/asserts.ts";
import { createLogger } from "../../lib/log.ts";
import { RendezvousError } from "./errors.ts";
import { PortPool } from "./port_pool.ts";
import { type ControlLink, ServiceTable } from "./service_table.ts";
import { Tickets } from "./tickets.ts";

const JOB = "6f1c9a52-6a3e-4a8e-9d1e-2f6a0c1b2d3e";
const OTHER_JOB = "7a2d0b63-7b4f-4b9f-8e2f-3a7b1d2c3e4f";
const FOREVER = Date.now() + 3_600_000;

/** An echo server standing in for the job's host. */
function echoHost() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buffer = new Uint8Array(4096);
        for (let n; (n = await conn.read(buffer)) !== null;) {
          await conn.write(buffer.subarray(0, n));
        }
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return { port: listener.addr.port, close: () => listener.close() };
}

/**
 * A supervisor as the table sees it: it brings each connection through by dialing the host and
 * handing that connection over as the data connection (or fails it, when `reachable` is off).
 */
function supervisor(id: string, tickets: Tickets, hostPort: number) {
  const link = {
    supervisorId: id,
    reachable: true,
    closed: [] as string[],
    open(ticket: string, jobId: string) {
      if (!link.reachable) {
        tickets.fail(
          ticket,
          jobId,
          new RendezvousError("host_unreachable", "Cannot connect: refused"),
        );
        return;
      }
      Deno.connect({ hostname: "127.0.0.1", port: hostPort }).then((conn) =>
        tickets.deliver(ticket, conn)
      );
    },
    close(reason: string) {
      link.closed.push(reason);
    },
  };
  return link satisfies ControlLink;
}

function setup(options: { max?: number; idleMs?: number; graceMs?: number } = {}) {
  const host = echoHost();
  const tickets = new Tickets(2_000);
  const table = new ServiceTable({
    ports: new PortPool("127.0.0.1", 20_000 + Math.floor(Math.random() * 20_000), 65_000),
    tickets,
    log: createLogger("test", "error"),
    publicHost: "rdv.example",
    maxConnectionsPerJob: options.max ?? 8,
    idleTimeoutMs: options.idleMs ?? 60_000,
    supervisorGraceMs: options.graceMs ?? 60_000,
  });
  return {
    host,
    tickets,
    table,
    stop() {
      table.close();
      host.close();
    },
  };
}

async function talk(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(text));
  const buffer = new Uint8Array(4096);
  const count = await conn.read(buffer);
  conn.close();
  return new TextDecoder().decode(buffer.subarray(0, count ?? 0));
}

/** Whether the port refuses connections (within a second: a listener closes asynchronously). */
async function refused(port: number): Promise<boolean> {
  for (const deadline = Date.now() + 1_000; Date.now() < deadline;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionRefused) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

Deno.test("ServiceTable.expose() opens a public port per service; withdraw() closes it", async () => {
  const { host, tickets, table, stop } = setup();
  const link = supervisor("sup-1", tickets, host.port);
  table.attach(link, JOB);
  const [endpoint] = table.expose(link, JOB, [{ name: "ssh", port: 22 }], FOREVER);
  assertEquals({ ...endpoint, public_port: 0 }, {
    name: "ssh",
    port: 22,
    host: "rdv.example",
    public_port: 0,
  });
  assertEquals(await talk(endpoint.public_port, "hello"), "hello");
  // Exposing the same set again keeps the port.
  assertEquals(table.expose(link, JOB, [{ name: "ssh", port: 22 }], FOREVER), [endpoint]);
  const traffic = table.metrics().jobs[JOB];
  assertEquals([traffic.connections_total, traffic.bytes_to_host], [1, 5]);

  const open = await Deno.connect({ hostname: "127.0.0.1", port: endpoint.public_port });
  await open.write(new TextEncoder().encode("x"));
  await open.read(new Uint8Array(1));
  assertEquals(table.expose(link, JOB, [], FOREVER), []);
  assert(await refused(endpoint.public_port));
  assertEquals(await open.read(new Uint8Array(1)), null, "the open connection was cut");
  open.close();
  assertEquals(table.metrics().jobs, {});
  assertEquals(table.metrics().totals.connections_total, 2);
  stop();
});

Deno.test("ServiceTable.carry() refuses beyond the per-job limit and when the host is unreachable", async () => {
  const { host, tickets, table, stop } = setup({ max: 2 });
  const link = supervisor("sup-1", tickets, host.port);
  table.attach(link, JOB);
  const [{ public_port: port }] = table.expose(link, JOB, [{ name: "ssh", port: 22 }], FOREVER);
  const held = await Promise.all([1, 2].map(() => Deno.connect({ hostname: "127.0.0.1", port })));
  for (const conn of held) {
    await conn.write(new Uint8Array([1]));
    await conn.read(new Uint8Array(1));
  }
  assertEquals(
    await talk(port, ""),
    "tml-rendezvous: Cannot connect: the job has 2 connections, the most allowed\r\n",
  );
  for (const conn of held) conn.close();
  link.reachable = false;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(await talk(port, ""), "tml-rendezvous: Cannot connect: refused\r\n");
  assertEquals(table.metrics().jobs[JOB].connections_refused, 2);
  stop();
});

Deno.test("ServiceTable keeps a detached job's ports for its supervisor, within the grace", async () => {
  const { host, tickets, table, stop } = setup({ graceMs: 300 });
  const first = supervisor("sup-1", tickets, host.port);
  table.attach(first, JOB);
  const [{ public_port: port }] = table.expose(first, JOB, [{ name: "ssh", port: 22 }], FOREVER);
  table.detach(first);
  assertEquals(
    await talk(port, "hi"),
    "tml-rendezvous: Cannot connect: the job's supervisor is reconnecting\r\n",
  );
  const second = supervisor("sup-1", tickets, host.port);
  table.attach(second, JOB);
  assertEquals(await talk(port, "back"), "back");
  // A reconnect that names no job any more withdraws it at once.
  table.detach(second);
  table.attach(supervisor("sup-1", tickets, host.port), null);
  assert(await refused(port));
  // Without a reconnect the grace runs out.
  const third = supervisor("sup-1", tickets, host.port);
  table.attach(third, JOB);
  const [{ public_port: again }] = table.expose(third, JOB, [{ name: "ssh", port: 22 }], FOREVER);
  table.detach(third);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert(await refused(again));
  stop();
});

Deno.test("ServiceTable withdraws a job whose grant expires, and cuts idle connections", async () => {
  const { host, tickets, table, stop } = setup({ idleMs: 200 });
  const link = supervisor("sup-1", tickets, host.port);
  table.attach(link, JOB);
  const [{ public_port: port }] = table.expose(link, JOB, [{ name: "ssh", port: 22 }], FOREVER);
  const idle = await Deno.connect({ hostname: "127.0.0.1", port });
  await idle.write(new Uint8Array([1]));
  await idle.read(new Uint8Array(1));
  const started = performance.now();
  assertEquals(await idle.read(new Uint8Array(1)), null);
  assert(performance.now() - started >= 150, "cut after the idle timeout, not before");
  idle.close();

  table.expose(link, JOB, [{ name: "ssh", port: 22 }], Date.now() + 100);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert(await refused(port));
  stop();
});

Deno.test("ServiceTable.expose() refuses a job another supervisor exposes, and duplicate ports", () => {
  const { host, tickets, table, stop } = setup();
  const one = supervisor("sup-1", tickets, host.port);
  const two = supervisor("sup-2", tickets, host.port);
  table.attach(one, JOB);
  table.attach(two, OTHER_JOB);
  table.expose(one, JOB, [{ name: "ssh", port: 22 }], FOREVER);
  const taken = assertThrows(
    () => table.expose(two, JOB, [{ name: "ssh", port: 22 }], FOREVER),
    RendezvousError,
  );
  assertEquals(taken.message, `Cannot expose job "${JOB}": another supervisor exposes it`);
  assertThrows(
    () => table.expose(two, OTHER_JOB, [{ name: "a", port: 80 }, { name: "b", port: 80 }], FOREVER),
    RendezvousError,
    "a port is listed twice",
  );
  // A newer connection of a supervisor replaces the older one.
  const again = supervisor("sup-1", tickets, host.port);
  table.attach(again, JOB);
  assertEquals(one.closed, ["replaced by a newer connection of the same supervisor"]);
  stop();
});
