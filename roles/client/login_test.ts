import { assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { TmlError } from "../../lib/errors.ts";
import { type LoginSources, resolveLogin } from "./login.ts";

/** Sources with no terminal; prompts and stdin record that they were used. */
function sources(overrides: Partial<LoginSources> = {}): LoginSources & { asked: string[] } {
  const asked: string[] = [];
  return {
    passwordStdin: false,
    env: {},
    stdinIsTerminal: false,
    readStdin: () => Promise.resolve("from-stdin\n"),
    ask: (message, hidden) => {
      asked.push(`${message}${hidden ? "(hidden)" : ""}`);
      return Promise.resolve(hidden ? "typed-password" : "typed-user");
    },
    asked,
    ...overrides,
  };
}

Deno.test("resolveLogin() takes the arguments first", async () => {
  const given = sources({
    user: "alice",
    password: "pw",
    env: { TML_USER: "x", TML_PASSWORD: "y" },
  });
  assertEquals(await resolveLogin(given), { user: "alice", password: "pw" });
  assertEquals(given.asked, []);
});

Deno.test("resolveLogin() falls back to TML_USER and TML_PASSWORD", async () => {
  assertEquals(
    await resolveLogin(sources({ env: { TML_USER: "a@example.org", TML_PASSWORD: "pw" } })),
    { user: "a@example.org", password: "pw" },
  );
});

Deno.test("resolveLogin() reads the password from stdin with --password-stdin, before TML_PASSWORD", async () => {
  assertEquals(
    await resolveLogin(
      sources({ user: "alice", passwordStdin: true, env: { TML_PASSWORD: "env" } }),
    ),
    { user: "alice", password: "from-stdin" },
  );
});

Deno.test("resolveLogin() prompts on a terminal, the password hidden", async () => {
  const terminal = sources({ stdinIsTerminal: true });
  assertEquals(await resolveLogin(terminal), { user: "typed-user", password: "typed-password" });
  assertEquals(terminal.asked, ["User (name or email): ", "Password: (hidden)"]);
});

Deno.test("resolveLogin() without a terminal says what to set instead of prompting", async () => {
  await assertRejects(() => resolveLogin(sources()), TmlError, "set TML_USER");
  await assertRejects(
    () => resolveLogin(sources({ user: "alice" })),
    TmlError,
    "set TML_PASSWORD or use --password-stdin",
  );
  // stdin holds the password, so the user cannot be asked for on it.
  await assertRejects(
    () => resolveLogin(sources({ stdinIsTerminal: true, passwordStdin: true })),
    TmlError,
    "no user given",
  );
});

Deno.test("resolveLogin() refuses an empty password with a usage error", async () => {
  const error = await assertRejects(
    () => resolveLogin(sources({ user: "alice", env: { TML_PASSWORD: "" } })),
    TmlError,
    "Cannot log in: the password is empty",
  );
  assertEquals(error.status, 400);
});
