/**
 * Switchboard benchmarks, against a real `tml switchboard serve` process on a real PostgreSQL
 * server, with simulated supervisors speaking the real websocket protocol:
 *
 * - dispatch latency: from the enqueue response to the supervisor receiving its start_job,
 *   with 200 connected supervisors (target p50 <= 5 ms, p99 <= 25 ms);
 * - throughput: complete job lifecycles (enqueue, schedule, initializing, ready, terminated
 *   with a workload result) per second with 1,000 supervisors, over 15,000 jobs so that start-up
 *   (connection pools, prepared statements, JIT) does not dominate (target >= 1,000/s).
 */
import { openPostgres } from "../lib/db/postgres.ts";
import { migrate } from "../lib/db/migrations.ts";
import { SWITCHBOARD_MIGRATIONS } from "../lib/db/migrations/mod.ts";
import { createUser } from "../lib/accounts/users.ts";
import { createToken } from "../lib/accounts/tokens.ts";
import { registerSupervisor } from "../lib/accounts/supervisors.ts";
import { startPostgresServer } from "../tests/support/postgres_server.ts";
import { startSwitchboard } from "../tests/support/tml_process.ts";
import { ScriptedSupervisor } from "../tests/support/scripted_supervisor.ts";

const LATENCY_SUPERVISORS = 200;
const LATENCY_JOBS = 1_000;
const THROUGHPUT_SUPERVISORS = 1_000;
const THROUGHPUT_JOBS = 15_000;
const IMAGE_ID = "b".repeat(64);

const postgres = await startPostgresServer();
const dataDir = await Deno.makeTempDir({ prefix: "tml-bench-" });
const db = await openPostgres(postgres.url);
await migrate(db, SWITCHBOARD_MIGRATIONS);
const user = await createUser(db, {
  name: "bench",
  email: "bench@example.test",
  password: "bench",
  permissions: ["submit_job", "run_job_on_supervisor:*"],
});
const { token } = await createToken(db, { userId: user.user_id, expiresInMs: 86_400_000 });
const registered: Array<{ supervisor_id: string; token: string }> = [];
for (let i = 0; i < THROUGHPUT_SUPERVISORS; i++) {
  registered.push(await registerSupervisor(db, { name: `sim-${i}`, tags: ["board:sim"] }));
}
await db.close();

const { url, process } = await startSwitchboard({
  dataDir,
  databaseUrl: postgres.url,
  env: { TML_LOG_LEVEL: "warn" },
});

/** Supervisors that run every job at once: initializing, ready, terminated with success. */
const startTimes = new Map<string, number>();
let onCompleted: (() => void) | undefined;
async function connect(from: number, to: number): Promise<ScriptedSupervisor[]> {
  const connected: ScriptedSupervisor[] = [];
  for (let i = from; i < to; i += 50) {
    const batch = registered.slice(i, Math.min(i + 50, to)).map((r) => {
      const supervisor = new ScriptedSupervisor(url, r.supervisor_id, r.token);
      supervisor.onCommand = (command) => {
        if (command.type !== "start_job") return;
        const jobId = command.job.job_id;
        startTimes.set(jobId, performance.now());
        void supervisor.update({ job_id: jobId, state: "initializing" });
        void supervisor.update({ job_id: jobId, state: "ready" });
        void supervisor.update({
          job_id: jobId,
          state: "terminated",
          exit_status: "workload_finished_success",
        })
          .then(() => onCompleted?.());
      };
      return supervisor;
    });
    await Promise.all(batch.map((supervisor) => supervisor.connect()));
    connected.push(...batch);
  }
  return connected;
}

async function enqueue(): Promise<{ jobId: string; respondedAt: number }> {
  const response = await fetch(`${url}/api/v1/jobs`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ image_id: IMAGE_ID, tag_config: "board:sim" }),
  });
  const body = await response.json();
  if (response.status !== 201) throw new Error(`enqueue failed: ${JSON.stringify(body)}`);
  return { jobId: body.job_id, respondedAt: performance.now() };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function figure(name: string, value: number, unit: string, target: string, pass: boolean): void {
  console.log(`${name}: ${value.toFixed(2)} ${unit} (target ${target}) ${pass ? "PASS" : "MISS"}`);
}

const supervisors = await connect(0, LATENCY_SUPERVISORS);

// Dispatch latency: one job at a time, so each measures an idle switchboard's path.
const latencies: number[] = [];
for (let i = 0; i < LATENCY_JOBS; i++) {
  const done = new Promise<void>((resolve) => (onCompleted = resolve));
  const { jobId, respondedAt } = await enqueue();
  while (!startTimes.has(jobId)) await new Promise((resolve) => setTimeout(resolve, 0));
  // A start_job that beats the HTTP response to the client counts as zero latency.
  latencies.push(Math.max(0, startTimes.get(jobId)! - respondedAt));
  await done;
}
latencies.sort((a, b) => a - b);
console.log(
  `dispatch latency over ${LATENCY_JOBS} jobs with ${LATENCY_SUPERVISORS} connected supervisors:`,
);
figure("  p50", percentile(latencies, 50), "ms", "<= 5 ms", percentile(latencies, 50) <= 5);
figure("  p99", percentile(latencies, 99), "ms", "<= 25 ms", percentile(latencies, 99) <= 25);

supervisors.push(...await connect(LATENCY_SUPERVISORS, THROUGHPUT_SUPERVISORS));
let completed = 0;
const allDone = new Promise<void>((resolve) => {
  onCompleted = () => {
    completed++;
    if (completed === THROUGHPUT_JOBS) resolve();
  };
});
const started = performance.now();
let next = 0;
await Promise.all(Array.from({ length: 64 }, async () => {
  while (next < THROUGHPUT_JOBS) {
    next++;
    await enqueue();
  }
}));
await allDone;
const seconds = (performance.now() - started) / 1000;
const rate = THROUGHPUT_JOBS / seconds;
console.log(
  `throughput: ${THROUGHPUT_JOBS} complete lifecycles with ${THROUGHPUT_SUPERVISORS} supervisors on PostgreSQL in ${
    seconds.toFixed(1)
  } s`,
);
figure("  lifecycles per second", rate, "jobs/s", ">= 1000/s", rate >= 1000);

await Promise.all(supervisors.map((supervisor) => supervisor.close().catch(() => {})));
await process.kill();
await postgres.stop();
await Deno.remove(dataDir, { recursive: true });
