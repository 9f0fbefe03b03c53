import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import {
  apiUrlOf,
  configDir,
  credentialsFile,
  DEFAULT_API_URL,
  type Env,
  findToken,
  forgetLogin,
  loadClientConfig,
  requireToken,
  storeLogin,
} from "./credentials.ts";
import { ClientError } from "./errors.ts";

async function withHome(fn: (env: Env, home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "tml-credentials-" });
  try {
    await fn({ HOME: home }, home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("configDir() follows XDG_CONFIG_HOME, else ~/.config", () => {
  assertEquals(configDir({ HOME: "/home/a" }), "/home/a/.config/tml");
  assertEquals(configDir({ HOME: "/home/a", XDG_CONFIG_HOME: "/x" }), "/x/tml");
  assertEquals(configDir({ HOME: "/home/a", XDG_CONFIG_HOME: "" }), "/home/a/.config/tml");
});

Deno.test("loadClientConfig() takes the API URL from the flag, then TML_API_URL, then the file", async () => {
  await withHome(async (env, home) => {
    assertEquals(apiUrlOf(await loadClientConfig({}, env)), DEFAULT_API_URL);
    await Deno.mkdir(`${home}/.config/tml`, { recursive: true });
    await Deno.writeTextFile(
      `${home}/.config/tml/config.toml`,
      'api_url = "http://file.example:7100/"\nssh_keys = ["ssh-ed25519 AAAA k"]\nimage_store = "x"\n',
    );
    const fromFile = await loadClientConfig({}, env);
    assertEquals(apiUrlOf(fromFile), "http://file.example:7100");
    assertEquals(fromFile.ssh_keys, ["ssh-ed25519 AAAA k"]);
    const withEnv = { ...env, TML_API_URL: "http://env.example" };
    assertEquals(apiUrlOf(await loadClientConfig({}, withEnv)), "http://env.example");
    assertEquals(
      apiUrlOf(await loadClientConfig({ apiUrl: "http://flag.example" }, withEnv)),
      "http://flag.example",
    );
  });
});

Deno.test("loadClientConfig() reads TML_CONFIG and names the source of a bad value", async () => {
  await withHome(async (env, home) => {
    await Deno.writeTextFile(`${home}/other.toml`, 'api_url = "not a url"\n');
    const error = await assertRejects(() =>
      loadClientConfig({}, { ...env, TML_CONFIG: `${home}/other.toml` })
    );
    assert(
      error.message.includes("api_url") && error.message.includes("other.toml"),
      error.message,
    );
    await assertRejects(
      () => loadClientConfig({}, { ...env, TML_CONFIG: `${home}/missing.toml` }),
      Error,
      "missing.toml",
    );
  });
});

Deno.test("findToken() prefers TML_API_TOKEN over the stored login", async () => {
  await withHome(async (env) => {
    assertEquals(await findToken("http://a", env), undefined);
    await storeLogin("http://a", { token: "stored-a", user: "alice" }, env);
    assertEquals(await findToken("http://a", env), "stored-a");
    assertEquals(
      await findToken("http://a", { ...env, TML_API_TOKEN: " from-env \n" }),
      "from-env",
    );
    // An empty TML_API_TOKEN (an unset CI secret) does not hide the stored login.
    assertEquals(await findToken("http://a", { ...env, TML_API_TOKEN: "" }), "stored-a");
  });
});

Deno.test("storeLogin() keys logins by API URL in a file only its owner can read", async () => {
  await withHome(async (env) => {
    await storeLogin("http://a", { token: "token-a" }, env);
    await storeLogin("http://b", { token: "token-b", token_id: "id-b" }, env);
    assertEquals(await findToken("http://a", env), "token-a");
    assertEquals(await findToken("http://b", env), "token-b");
    assertEquals((await Deno.stat(credentialsFile(env))).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(configDir(env))).mode! & 0o777, 0o700);
    const entries = [];
    for await (const entry of Deno.readDir(configDir(env))) entries.push(entry.name);
    assertEquals(entries, ["credentials.json"], "no temporary file left behind");
  });
});

Deno.test("forgetLogin() removes one URL's login and returns it", async () => {
  await withHome(async (env) => {
    await storeLogin("http://a", { token: "token-a", token_id: "id-a" }, env);
    await storeLogin("http://b", { token: "token-b" }, env);
    assertEquals((await forgetLogin("http://a", env))?.token_id, "id-a");
    assertEquals(await forgetLogin("http://a", env), undefined);
    assertEquals(await findToken("http://a", env), undefined);
    assertEquals(await findToken("http://b", env), "token-b");
  });
});

Deno.test("requireToken() says how to log in when there is no token", async () => {
  await withHome(async (env) => {
    const error = await assertRejects(() => requireToken("http://a", env), ClientError);
    assertEquals(error.status, 401);
    assert(error.message.includes("TML_API_TOKEN") && error.message.includes("tml login"));
  });
});

Deno.test("findToken() refuses a corrupt credentials file, naming it", async () => {
  await withHome(async (env) => {
    await Deno.mkdir(configDir(env), { recursive: true });
    await Deno.writeTextFile(credentialsFile(env), "{not json");
    await assertRejects(() => findToken("http://a", env), ClientError, credentialsFile(env));
    // TML_API_TOKEN still works: scripts never depend on the file.
    assertEquals(await findToken("http://a", { ...env, TML_API_TOKEN: "t" }), "t");
  });
});
