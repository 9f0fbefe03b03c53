import { assertEquals, assertRejects, assertThrows } from "../../lib/testing/asserts.ts";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { portRange, readTls, RendezvousConfig, splitHostPort } from "./config.ts";

const load = (flags: Record<string, unknown>, env: Record<string, string> = {}) =>
  loadConfig(RendezvousConfig, { flags, env });

Deno.test("RendezvousConfig has working defaults and reads flags and TML_* variables", async () => {
  const config = await load({}, { TML_MAX_CONNECTIONS_PER_JOB: "8", TML_IDLE_TIMEOUT: "5m" });
  assertEquals(config.listen, "127.0.0.1:7300");
  assertEquals(portRange(config), { first: 7400, last: 7499 });
  assertEquals(config.max_connections_per_job, 8);
  assertEquals(config.idle_timeout, 300_000);
  assertEquals(await readTls(config), undefined);
  assertEquals(splitHostPort(":7300"), { hostname: "0.0.0.0", port: 7300 });
  assertEquals(splitHostPort("[::1]:7300"), { hostname: "::1", port: 7300 });
});

Deno.test("RendezvousConfig errors name the field and its source", async () => {
  const badRange = await assertRejects(() => load({ port_range: "7400" }), ConfigError);
  assertEquals(badRange.field, "port_range");
  assertEquals(badRange.message.includes("(--port-range)"), true);
  const backwards = assertThrows(
    () => portRange({ ...RendezvousConfig.parse({}), port_range: "7500-7400" }),
    ConfigError,
  );
  assertEquals(backwards.field, "port_range");
  const limit = await assertRejects(
    () => load({}, { TML_MAX_CONNECTIONS_PER_JOB: "0" }),
    ConfigError,
  );
  assertEquals(limit.message.includes("(TML_MAX_CONNECTIONS_PER_JOB)"), true);
});

Deno.test("readTls() needs both files, and names the one it cannot read", async () => {
  const half = await assertRejects(
    () => readTls(RendezvousConfig.parse({ tls_cert: "/nonexistent/cert.pem" })),
    ConfigError,
  );
  assertEquals(half.field, "tls_key");
  const missing = await assertRejects(
    () =>
      readTls(RendezvousConfig.parse({ tls_cert: "/nonexistent/c", tls_key: "/nonexistent/k" })),
    ConfigError,
    'Cannot read tls_cert "/nonexistent/c"',
  );
  assertEquals(missing.field, "tls_cert");
});
