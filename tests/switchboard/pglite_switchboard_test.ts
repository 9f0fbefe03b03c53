/**
 * The zero-setup path end to end: `tml admin` and `tml switchboard serve` on embedded PGlite
 * under a data directory, a local supervisor, a job, and a `kill -9` of the switchboard that
 * loses nothing.
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import { runTml, startSwitchboard, TmlProcess } from "../support/tml_process.ts";

Deno.test({
  name: "switchboard on PGlite: admin, a job, kill -9 and restart keep every record",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tml-pglite-sb-" });
    const dataDir = `${dir}/switchboard`;
    const processes: TmlProcess[] = [];
    try {
      const adminRun = async (args: string[]) => {
        const result = await runTml(["admin", "--data-dir", dataDir, ...args]);
        assertEquals(result.code, 0, result.stderr);
        return JSON.parse(result.stdout);
      };
      await adminRun([
        "user",
        "create",
        "pat",
        "--email",
        "pat@example.test",
        "--password",
        "pw-pat",
        "--grant",
        "admin",
      ]);
      const registered = await adminRun([
        "supervisor",
        "register",
        "pg-local",
        "--tags",
        "board:pglite",
        "--token-file",
        `${dir}/token`,
      ]);

      const first = await startSwitchboard({ dataDir });
      processes.push(first.process);
      const port = new URL(first.url).port;
      const supervisor = TmlProcess.start([
        "supervisor",
        "local",
        "--switchboard",
        first.url,
        "--id",
        registered.supervisor_id,
        "--token-file",
        `${dir}/token`,
        "--state-dir",
        `${dir}/s`,
      ]);
      processes.push(supervisor);
      await supervisor.waitFor(/connected to the switchboard/);

      const env = { TML_API_URL: first.url, HOME: dir, XDG_CONFIG_HOME: `${dir}/config` };
      assertEquals((await runTml(["login", "pat", "pw-pat"], { env })).code, 0);
      const enqueued = await runTml([
        "job",
        "enqueue",
        "c".repeat(64),
        "--tag-config",
        "board:pglite",
        "--workload",
        "echo hi",
      ], { env });
      assertEquals(enqueued.code, 0, enqueued.stderr);
      const jobId = JSON.parse(enqueued.stdout).job_id;
      const waited = await runTml(["job", "wait", jobId, "--timeout", "60s"], { env });
      assertEquals(waited.code, 0, waited.stdout + waited.stderr);

      await first.process.kill("SIGKILL");
      const second = await startSwitchboard({ dataDir, args: ["--listen", `127.0.0.1:${port}`] });
      processes.push(second.process);
      await supervisor.waitFor(
        /connected to the switchboard[\s\S]*connected to the switchboard/,
        30_000,
      );
      const shown = await runTml(["job", "show", jobId, "--json"], { env });
      assertEquals(JSON.parse(shown.stdout).exit_status, "workload_finished_success");
      const again = await runTml([
        "job",
        "enqueue",
        "c".repeat(64),
        "--tag-config",
        "board:pglite",
        "--workload",
        "exit 1",
      ], { env });
      const second_job = JSON.parse(again.stdout).job_id;
      assertEquals(
        (await runTml(["job", "wait", second_job, "--timeout", "60s"], { env })).code,
        10,
      );
    } finally {
      for (const process of processes.reverse()) await process.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
