import { assertEquals, assertRejects } from "./testing/asserts.ts";
import { z } from "zod";
import { configBool, ConfigError, configList, configNumber, loadConfig } from "./config.ts";

const Schema = z.object({
  listen: z.string().default("127.0.0.1:7100"),
  port_count: configNumber().default(3),
  verbose: configBool().default(false),
  tags: configList().default([]),
});

Deno.test("loadConfig() layers defaults < file < environment < flags", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/role.toml`;
  await Deno.writeTextFile(file, 'listen = "0.0.0.0:1"\nport_count = 5\ntags = ["a", "b"]\n');
  const config = await loadConfig(Schema, {
    file,
    env: { TML_PORT_COUNT: "7", TML_VERBOSE: "yes" },
    flags: { tags: "x,y", listen: undefined },
  });
  assertEquals(config, { listen: "0.0.0.0:1", port_count: 7, verbose: true, tags: ["x", "y"] });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadConfig() names the field and the source of a bad value", async () => {
  const error = await assertRejects(
    () => loadConfig(Schema, { env: { TML_PORT_COUNT: "many" } }),
    ConfigError,
  );
  assertEquals(error.field, "port_count");
  assertEquals(error.message.includes("port_count:"), true);
  assertEquals(error.message.includes("(TML_PORT_COUNT)"), true);
});

Deno.test("loadConfig() rejects unknown keys in a file, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/role.toml`;
  await Deno.writeTextFile(file, "lisen = 3\n");
  const error = await assertRejects(() => loadConfig(Schema, { file, env: {} }), ConfigError);
  assertEquals(error.message.includes(file), true);
  assertEquals(error.message.includes("lisen"), true);
  await Deno.remove(dir, { recursive: true });
});
