import { assert, assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { ConfigError } from "../../lib/config.ts";
import { loadSupervisorConfig } from "./config.ts";

const ID = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140";

Deno.test("loadSupervisorConfig() reads and trims the token and picks a state directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/token`, "  the-token\n");
    const config = await loadSupervisorConfig({
      env: {},
      flags: {
        switchboard: "http://127.0.0.1:7100",
        id: ID,
        token_file: `${dir}/token`,
        tags: "board:a, board:b",
        heartbeat_interval: "500ms",
      },
    });
    assertEquals(config.token, "the-token");
    assertEquals(config.state_dir, `.tml-data/supervisor-${ID}`);
    assertEquals(config.tags, ["board:a", "board:b"]);
    assertEquals(config.heartbeat_interval, 500);
    assertEquals(config.ready_timeout, 120_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSupervisorConfig() names the field and source of a bad value", async () => {
  const error = await assertRejects(
    () =>
      loadSupervisorConfig({
        env: { TML_ID: "not-a-uuid" },
        flags: { switchboard: "http://127.0.0.1:7100", token_file: "/nonexistent" },
      }),
    ConfigError,
  );
  assertEquals(error.field, "id");
  assert(error.message.includes("TML_ID"), error.message);
});

Deno.test("loadSupervisorConfig() says which token file it cannot read, or that it is empty", async () => {
  const flags = { switchboard: "http://127.0.0.1:7100", id: ID, token_file: "/nonexistent/token" };
  const missing = await assertRejects(() => loadSupervisorConfig({ env: {}, flags }), ConfigError);
  assertEquals(missing.field, "token_file");
  assert(missing.message.includes('"/nonexistent/token"'), missing.message);
  const empty = await Deno.makeTempFile();
  try {
    const error = await assertRejects(
      () => loadSupervisorConfig({ env: {}, flags: { ...flags, token_file: empty } }),
      ConfigError,
    );
    assert(error.message.includes("empty"), error.message);
  } finally {
    await Deno.remove(empty);
  }
});

Deno.test("loadSupervisorConfig() reads the rendezvous services as NAME=PORT, ssh=22 by default", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/token`, "the-token");
    const flags = { switchboard: "http://127.0.0.1:7100", id: ID, token_file: `${dir}/token` };
    const plain = await loadSupervisorConfig({ env: {}, flags });
    assertEquals(plain.rendezvous, undefined);
    assertEquals(plain.rendezvous_services, [{ name: "ssh", port: 22 }]);
    const listed = await loadSupervisorConfig({
      env: { TML_RENDEZVOUS: "wss://rdv.example", TML_RENDEZVOUS_SERVICES: "ssh=2222, http=80" },
      flags,
    });
    assertEquals(listed.rendezvous_services, [{ name: "ssh", port: 2222 }, {
      name: "http",
      port: 80,
    }]);
    for (const bad of ["ssh", "ssh=99999", "SSH=22"]) {
      const error = await assertRejects(
        () => loadSupervisorConfig({ env: { TML_RENDEZVOUS_SERVICES: bad }, flags }),
        ConfigError,
      );
      assertEquals(error.field?.startsWith("rendezvous_services"), true, error.message);
      assert(error.message.includes("TML_RENDEZVOUS_SERVICES"), error.message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
