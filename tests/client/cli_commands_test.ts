/**
 * Every client command as a real `tml` process against a real `tml switchboard serve` on
 * embedded PGlite (users and the supervisor are created with `tml admin` before it starts, as
 * PGlite allows one process), with a local supervisor running the jobs: login and logout,
 * tokens, supervisors, tables and JSON, SSH keys, `job wait` codes and `job wait` riding out a
 * `kill -9` of the switchboard.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import { freePort, runTml, startSwitchboard, TmlProcess } from "../support/tml_process.ts";
import { type Spine, startLocalSupervisor, TEST_IMAGE_ID } from "../support/spine.ts";

const REAL_DENO_DIR = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
const USER_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0bmQpE7Hq6cQm3h3b3b3b3b3b3b3b3b3b3b3b3b3b3 me@laptop";

Deno.test({
  name: "tml client commands end to end on a PGlite switchboard",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "tml-cli-commands-" });
    const dataDir = `${dir}/switchboard`;
    const processes: TmlProcess[] = [];
    try {
      const admin = async (args: string[]) => {
        const result = await runTml(["admin", "--data-dir", dataDir, ...args]);
        assertEquals(result.code, 0, result.stderr);
        return JSON.parse(result.stdout);
      };
      const user = (name: string, grants: string[]) =>
        admin([
          "user",
          "create",
          name,
          "--email",
          `${name}@example.test`,
          "--password",
          `pw-${name}`,
          ...grants.flatMap((grant) => ["--grant", grant]),
        ]);
      await user("ann", ["admin"]);
      await user("bob", ["submit_job", "run_job_on_supervisor:*"]);
      const registered = await admin([
        "supervisor",
        "register",
        "cli-local",
        "--tags",
        "board:cmd",
      ]);

      let switchboard = await startSwitchboard({ dataDir });
      processes.push(switchboard.process);
      const url = switchboard.url;
      const supervisor = await startLocalSupervisor(
        { url } as Spine, // the helper needs only the switchboard's URL
        { supervisorId: registered.supervisor_id, token: registered.token },
        `${dir}/supervisor`,
      );
      processes.push(supervisor);

      const home = `${dir}/home`;
      await Deno.mkdir(`${home}/.ssh`, { recursive: true });
      await Deno.writeTextFile(`${home}/.ssh/id_ed25519.pub`, `${USER_KEY}\n`);
      const env = {
        HOME: home,
        XDG_CONFIG_HOME: `${home}/.config`,
        TML_API_URL: url,
        DENO_DIR: REAL_DENO_DIR,
      };
      const tml = (args: string[], extra: Record<string, string> = {}, stdin?: string) =>
        runTml(args, { env: { ...env, ...extra }, stdin });
      const ok = async (args: string[], extra: Record<string, string> = {}, stdin?: string) => {
        const result = await tml(args, extra, stdin);
        assertEquals(result.code, 0, `tml ${args.join(" ")}:\n${result.stderr}`);
        return result;
      };
      const enqueue = async (args: string[], extra: Record<string, string> = {}) =>
        JSON.parse((await ok(["job", "enqueue", TEST_IMAGE_ID, ...args], extra)).stdout);

      let bobToken = "";
      await t.step("login reads the password from stdin and stores the token 0600", async () => {
        const login = await ok(["login", "bob", "--password-stdin"], {}, "pw-bob\n");
        const printed = JSON.parse(login.stdout);
        assertEquals(printed.api_url, url);
        const stored = JSON.parse(await Deno.readTextFile(`${home}/.config/tml/credentials.json`));
        bobToken = stored[url].token;
        assertEquals(stored[url].token_id, printed.token_id);
        assert(!login.stdout.includes(bobToken) && !login.stderr.includes(bobToken));
        const mode = (await Deno.stat(`${home}/.config/tml/credentials.json`)).mode! & 0o777;
        assertEquals(mode, 0o600);
        assertEquals(JSON.parse((await ok(["whoami", "--json"])).stdout).name, "bob");
      });

      await t.step("TML_API_TOKEN takes precedence over the stored login", async () => {
        const wrong = await tml(["whoami"], { TML_API_TOKEN: "not-a-token" });
        assertEquals(wrong.code, 1);
        assert(wrong.stderr.startsWith("tml: "), wrong.stderr);
      });

      let ciToken = "";
      await t.step("token create prints a limited token once; list and revoke", async () => {
        const created = JSON.parse(
          (await ok([
            "token",
            "create",
            "--expires-in",
            "1d",
            "--permission",
            "submit_job",
            "--permission",
            "run_job_on_supervisor:*",
            "--description",
            "ci",
          ])).stdout,
        );
        ciToken = created.token;
        assertEquals(created.permissions, ["submit_job", "run_job_on_supervisor:*"]);
        const listed = JSON.parse((await ok(["token", "list", "--json"])).stdout);
        assertEquals(listed.tokens.length, 2);
        assert(!JSON.stringify(listed).includes(ciToken), "token list shows no secret");
        const throwaway = JSON.parse((await ok(["token", "create", "--expires-in", "1h"])).stdout);
        await ok(["token", "revoke", throwaway.token_id]);
        const revoked = await tml(["job", "list"], { TML_API_TOKEN: throwaway.token });
        assertEquals(revoked.code, 1, revoked.stderr);
        const badExpiry = await tml(["token", "create", "--expires-in", "soon"]);
        assertEquals(badExpiry.code, 2);
        assertStringIncludes(badExpiry.stderr, "--expires-in");
      });

      await t.step(
        "enqueue adds ~/.ssh keys, or the --ssh-key ones, and tml's own key",
        async () => {
          const job = await enqueue(["--tag-config", "board:cmd", "--workload", "true"], {
            TML_API_TOKEN: ciToken,
          });
          const ownKey = (await Deno.readTextFile(`${home}/.config/tml/ssh/id_ed25519.pub`)).trim();
          assertEquals(job.ssh_keys, [USER_KEY, ownKey]);
          const given =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl2ZW4ga2V5IGZvciB0ZXN0cyBvbmx5IHh4eA== ci";
          const second = await enqueue(
            ["--ssh-key", given, "--tag-config", "board:cmd", "--workload", "true"],
            { TML_API_TOKEN: ciToken },
          );
          assertEquals(second.ssh_keys, [given, ownKey]);
          await ok(["job", "wait", job.job_id, "--timeout", "30s"]);
          await ok(["job", "wait", second.job_id, "--timeout", "30s"]);
        },
      );

      await t.step("a CI script enqueues and takes the id with jq -r .job_id", async () => {
        // GitHub Actions runs a bash step as `bash -eo pipefail`.
        const script = `
set -euo pipefail
tml() { "$DENO" run -A "$MAIN_TS" "$@"; }
JOB=$(tml job enqueue "$IMAGE_ID" --tag-config "board:$DUT_BOARD" --parameters "$TML_JOB_PARAMETERS" | jq -r .job_id)
echo "job=$JOB"
`;
        const run = (parameters: string) =>
          new Deno.Command("bash", {
            args: ["-c", script],
            env: {
              ...env,
              DENO: Deno.execPath(),
              MAIN_TS: new URL("../../main.ts", import.meta.url).pathname,
              TML_API_TOKEN: ciToken,
              IMAGE_ID: TEST_IMAGE_ID,
              DUT_BOARD: "cmd",
              TML_JOB_PARAMETERS: parameters,
            },
            stdout: "piped",
            stderr: "piped",
          }).output();
        const good = await run('{"x":{"value":"1","secret":true}}');
        const stdout = new TextDecoder().decode(good.stdout);
        assertEquals(good.code, 0, new TextDecoder().decode(good.stderr));
        assertMatch(stdout.trim(), /^job=[0-9a-f-]{36}$/);
        // No workload: like a GitHub runner image, the job would hold its host until canceled.
        const jobId = stdout.trim().slice("job=".length);
        assertEquals(JSON.parse((await ok(["job", "show", jobId, "--json"])).stdout).parameters, {
          x: { value: null, secret: true },
        });
        await ok(["job", "cancel", jobId]);
        const bad = await run('{"x":{"value":1,"secret":true}}');
        assert(bad.code !== 0, "a bad --parameters fails the script");
        assertStringIncludes(
          new TextDecoder().decode(bad.stderr),
          "tml: Cannot enqueue job: --parameters: x.value: expected string",
        );
      });

      await t.step("job wait: --timeout is exit code 15, cancellation 14", async () => {
        const job = await enqueue(["--tag-config", "board:cmd", "--workload", "sleep 60"]);
        const early = await tml(["job", "wait", job.job_id, "--timeout", "1s"]);
        assertEquals(early.code, 15, early.stderr);
        assert(JSON.parse(early.stdout).state !== "terminated");
        assertStringIncludes(early.stderr, "did not terminate within 1s");
        const canceled = await ok(["job", "cancel", job.job_id]);
        assertEquals(JSON.parse(canceled.stdout).job_id, job.job_id);
        const waited = await tml(["job", "wait", job.job_id, "--timeout", "30s"]);
        assertEquals(waited.code, 14, waited.stderr);
        assertEquals(JSON.parse(waited.stdout).exit_status, "job_canceled");
      });

      await t.step("a job no supervisor can take warns at enqueue; wait exits 12", async () => {
        const enqueued = await ok([
          "job",
          "enqueue",
          TEST_IMAGE_ID,
          "--tag-config",
          "board:nowhere",
        ]);
        assertStringIncludes(enqueued.stderr, "supervisor_match_error");
        const job = JSON.parse(enqueued.stdout);
        assertEquals((await tml(["job", "wait", job.job_id])).code, 12);
      });

      await t.step("list pages, filters and refuses a bad state", async () => {
        const terminated = JSON.parse(
          (await ok(["job", "list", "--state", "terminated", "--limit", "2", "--json"])).stdout,
        );
        assertEquals(terminated.jobs.length, 2);
        assert(terminated.next_cursor !== null);
        const everything = JSON.parse(
          (await ok(["job", "list", "--all", "--limit", "1", "--json"])).stdout,
        );
        assertEquals(everything.jobs.length, 5, "bob's five jobs, one page each");
        assertEquals(new Set(everything.jobs.map((job: { job_id: string }) => job.job_id)).size, 5);
        const bad = await tml(["job", "list", "--state", "sleeping"]);
        assertEquals(bad.code, 2);
        assertStringIncludes(bad.stderr, "--state");
      });

      await t.step("people get tables: show, history, supervisors", async () => {
        const job = await enqueue(["--tag-config", "board:cmd", "--workload", "true"]);
        await ok(["job", "wait", job.job_id, "--timeout", "30s"]);
        const table = { TML_OUTPUT: "table" };
        const shown = await ok(["job", "show", job.job_id], table);
        assertStringIncludes(shown.stdout, "workload_finished_success");
        assertStringIncludes(shown.stdout, "│");
        const history = await ok(["job", "history", job.job_id], table);
        for (const word of ["queued", "ready", "terminated", "lasted", "supervisor"]) {
          assertStringIncludes(history.stdout, word);
        }
        const forbidden = await tml(["supervisor", "list"]);
        assertEquals(forbidden.code, 1, "bob lacks list_supervisors");
        const annToken = JSON.parse((await ok(["login", "ann", "pw-ann"])).stdout);
        assert(annToken.token_id !== undefined);
        const supervisors = JSON.parse((await ok(["supervisor", "list", "--json"])).stdout);
        assertEquals(supervisors.supervisors.length, 1);
        assertEquals(supervisors.supervisors[0].connected, true);
        const one = await ok(["supervisor", "show", registered.supervisor_id], table);
        assertStringIncludes(one.stdout, "cli-local");
        assertStringIncludes(one.stdout, "board:cmd");
      });

      await t.step("job wait rides out a kill -9 and restart of the switchboard", async () => {
        const job = await enqueue(["--tag-config", "board:cmd", "--workload", "sleep 3"]);
        await switchboard.process.kill("SIGKILL");
        // The waiter starts while the switchboard is down, so it must retry to see the end.
        const waiter = TmlProcess.start(["job", "wait", job.job_id, "--timeout", "90s"], { env });
        processes.push(waiter);
        await waiter.waitFor(/retrying in/);
        switchboard = await startSwitchboard({
          dataDir,
          args: ["--listen", `127.0.0.1:${new URL(url).port}`],
        });
        processes.push(switchboard.process);
        const status = await waiter.wait();
        assertEquals(status.code, 0, waiter.stderr);
        assertStringIncludes(waiter.stderr, `Cannot reach the switchboard at "${url}/api/v1/jobs/`);
        assertEquals(JSON.parse(waiter.stdout).exit_status, "workload_finished_success");
      });

      await t.step("logout revokes the stored token", async () => {
        const stored = JSON.parse(await Deno.readTextFile(`${home}/.config/tml/credentials.json`));
        const annToken = stored[url].token;
        await ok(["logout"]);
        const reused = await tml(["whoami"], { TML_API_TOKEN: annToken });
        assertEquals(reused.code, 1);
        const none = await tml(["job", "list"]);
        assertEquals(none.code, 1);
        assertStringIncludes(none.stderr, 'run "tml login"');
      });

      await t.step("an unreachable --api-url exits 1 naming the URL", async () => {
        const closed = freePort();
        const result = await tml(
          ["--api-url", `http://127.0.0.1:${closed}`, "job", "enqueue", TEST_IMAGE_ID],
          { TML_API_TOKEN: ciToken },
        );
        assertEquals(result.code, 1);
        assertStringIncludes(
          result.stderr,
          `Cannot reach the switchboard at "http://127.0.0.1:${closed}/api/v1/jobs"`,
        );
        assertEquals(result.stdout, "");
      });

      await t.step("tml help job wait shows the exit codes", async () => {
        const help = await ok(["help", "job", "wait"]);
        assertStringIncludes(help.stdout, "Exit codes:");
        assertStringIncludes(help.stdout, "14  canceled: job_canceled");
      });

      await t.step("no token or password in any log", () => {
        for (const log of processes.flatMap((process) => [process.stdout, process.stderr])) {
          for (const secret of [bobToken, ciToken, "pw-bob", "pw-ann"]) {
            assert(!log.includes(secret), "a secret in a log");
          }
        }
      });
    } finally {
      for (const process of processes.reverse()) await process.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
