/**
 * A small testbed for end-to-end tests of the job spine: a real PostgreSQL server, a real
 * `tml switchboard serve` process on it, users and supervisors created with `tml admin`, and
 * a plain HTTP helper for the API. Reads like a script in the tests that use it.
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import { startPostgresServer } from "./postgres_server.ts";
import { runTml, startSwitchboard, TmlProcess } from "./tml_process.ts";

export interface Spine {
  url: string;
  databaseUrl: string;
  dataDir: string;
  switchboard: TmlProcess;
  /** Restarts the switchboard on the same port (after a kill). */
  restart(signal?: Deno.Signal): Promise<void>;
  stop(): Promise<void>;
}

export async function startSpine(switchboardArgs: string[] = []): Promise<Spine> {
  const postgres = await startPostgresServer();
  const dataDir = await Deno.makeTempDir({ prefix: "tml-spine-" });
  let { url, process } = await startSwitchboard({
    dataDir,
    databaseUrl: postgres.url,
    args: switchboardArgs,
  });
  const port = new URL(url).port;
  const spine: Spine = {
    url,
    databaseUrl: postgres.url,
    dataDir,
    switchboard: process,
    async restart(signal: Deno.Signal = "SIGKILL") {
      await spine.switchboard.kill(signal);
      ({ url, process } = await startSwitchboard({
        dataDir,
        databaseUrl: postgres.url,
        args: [...switchboardArgs, "--listen", `127.0.0.1:${port}`],
      }));
      spine.switchboard = process;
    },
    async stop() {
      await spine.switchboard.kill();
      await postgres.stop();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
  return spine;
}

/** Runs `tml admin ...` against the spine's database and parses its JSON output. */
export async function admin(spine: Spine, args: string[], stdin?: string): Promise<unknown> {
  const result = await runTml(["admin", "--database-url", spine.databaseUrl, ...args], { stdin });
  assertEquals(result.code, 0, `tml admin ${args.join(" ")} failed:\n${result.stderr}`);
  const text = result.stdout.trim();
  return text === "" ? undefined : JSON.parse(text);
}

/** Creates a user with a password and permissions; returns an API token for it. */
export async function createUser(
  spine: Spine,
  name: string,
  permissions: string[],
): Promise<{ token: string; userId: string }> {
  const password = `pw-${crypto.randomUUID()}`;
  const args = ["user", "create", name, "--email", `${name}@example.test`, "--password", password];
  for (const permission of permissions) args.push("--grant", permission);
  await admin(spine, args);
  const response = await api(spine, "", "POST", "/tokens/login", { user: name, password });
  assertEquals(response.status, 201, JSON.stringify(response.body));
  const body = response.body as { token: string; user_id: string };
  return { token: body.token, userId: body.user_id };
}

/** Registers a supervisor; returns its id and token. */
export async function registerSupervisor(
  spine: Spine,
  name: string,
  tags: string[],
): Promise<{ supervisorId: string; token: string }> {
  const output = await admin(spine, ["supervisor", "register", name, "--tags", tags.join(",")]) as {
    supervisor_id: string;
    token: string;
  };
  return { supervisorId: output.supervisor_id, token: output.token };
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** Calls the switchboard's API with a bearer token. */
export async function api(
  spine: Spine,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (token !== "") headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${spine.url}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

/** Polls a job until `predicate` holds; fails with the last view after `timeoutMs`. */
export async function waitForJob(
  spine: Spine,
  token: string,
  jobId: string,
  predicate: (job: Record<string, unknown>) => boolean,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const response = await api(spine, token, "GET", `/jobs/${jobId}`);
    last = response.body;
    if (response.status === 200 && predicate(last as Record<string, unknown>)) {
      return last as Record<string, unknown>;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `job ${jobId} did not reach the expected state; last view: ${JSON.stringify(last)}`,
  );
}

/** An image id for tests that run without an image store (the switchboard does not check). */
export const TEST_IMAGE_ID = "a".repeat(64);

/**
 * Starts `tml supervisor local` for a registered supervisor, with its token in `dir`, and
 * waits until it is connected.
 */
export async function startLocalSupervisor(
  spine: Spine,
  registered: { supervisorId: string; token: string },
  dir: string,
): Promise<TmlProcess> {
  const tokenFile = `${dir}/supervisor.token`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(tokenFile, registered.token, { mode: 0o600 });
  const supervisor = TmlProcess.start([
    "supervisor",
    "local",
    "--switchboard",
    spine.url,
    "--id",
    registered.supervisorId,
    "--token-file",
    tokenFile,
    "--state-dir",
    dir,
  ]);
  await supervisor.waitFor(/connected to the switchboard/);
  return supervisor;
}
