import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { PortPool } from "./port_pool.ts";

/** A run of `count` ports none of which is listening now. */
function freeRange(count: number): number {
  while (true) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const first = probe.addr.port;
    probe.close();
    if (first + count > 65535) continue;
    try {
      const held = Array.from(
        { length: count },
        (_, i) => Deno.listen({ hostname: "127.0.0.1", port: first + i }),
      );
      for (const listener of held) listener.close();
      return first;
    } catch {
      // Something holds a port of the run: try another.
    }
  }
}

Deno.test("PortPool.listen() hands out each port of the range once, skipping ports in use", () => {
  const first = freeRange(3);
  const squatter = Deno.listen({ hostname: "127.0.0.1", port: first + 1 });
  const pool = new PortPool("127.0.0.1", first, first + 2);
  const a = pool.listen()!;
  const b = pool.listen()!;
  assertEquals([a.addr.port, b.addr.port], [first, first + 2]);
  assertEquals(pool.listen(), undefined);
  squatter.close();
  pool.release(a);
  pool.release(b);
});

Deno.test("PortPool.release() frees a port, reused only after the others", () => {
  const first = freeRange(3);
  const pool = new PortPool("127.0.0.1", first, first + 2);
  const a = pool.listen()!;
  pool.release(a);
  const next = [pool.listen()!, pool.listen()!, pool.listen()!];
  assertEquals(next.map((l) => l.addr.port), [first + 1, first + 2, first]);
  assert(pool.range === `${first}-${first + 2}`);
  for (const listener of next) pool.release(listener);
});
