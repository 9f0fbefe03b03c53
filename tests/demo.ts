/**
 * `./tmlw demo`: a whole local testbed and one job through it, narrated. Starts a switchboard
 * on embedded PGlite, registers a local supervisor, logs in, enqueues a job with a parameter
 * and a workload exactly as a CI script would, waits for it, and shows its history.
 */
import { runTml, TmlProcess, type TmlRunResult } from "./support/tml_process.ts";

const started = Date.now();
const dataDir = await Deno.makeTempDir({ prefix: "tml-demo-" });
const home = `${dataDir}/home`;
await Deno.mkdir(home);
const env = { HOME: home, XDG_CONFIG_HOME: `${home}/.config`, TML_LOG_LEVEL: "warn" };
const processes: TmlProcess[] = [];

function step(text: string): void {
  console.log(`\n\x1b[1m==> ${text}\x1b[0m  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

async function tml(
  args: string[],
  extraEnv: Record<string, string> = {},
  show: (stdout: string) => string = (stdout) => stdout,
): Promise<TmlRunResult> {
  console.log(`$ tml ${args.map((arg) => /[\s"'{}$;]/.test(arg) ? `'${arg}'` : arg).join(" ")}`);
  const result = await runTml(args, { env: { ...env, ...extraEnv } });
  if (result.stdout.trim() !== "") console.log(show(result.stdout).trimEnd());
  if (result.code !== 0 && !args.includes("wait")) {
    console.error(result.stderr);
    throw new Error(`tml ${args[0]} ${args[1] ?? ""} failed with exit code ${result.code}`);
  }
  return result;
}

try {
  step("Create the first admin user and register a supervisor (tml admin talks to the database)");
  const switchboardData = `${dataDir}/switchboard`;
  await tml([
    "admin",
    "--data-dir",
    switchboardData,
    "user",
    "create",
    "demo",
    "--email",
    "demo@example.com",
    "--password",
    "demo-password",
    "--grant",
    "admin",
  ]);
  const registered = JSON.parse(
    (await tml([
      "admin",
      "--data-dir",
      switchboardData,
      "supervisor",
      "register",
      "local-1",
      "--tags",
      "board:demo",
      "--token-file",
      `${dataDir}/supervisor.token`,
    ])).stdout,
  );

  step("Start the switchboard on embedded PGlite");
  const switchboard = TmlProcess.start([
    "switchboard",
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    switchboardData,
  ], { env });
  processes.push(switchboard);
  const url = (await switchboard.waitFor(/listening on (http:\/\/\S+)/, 60_000))[1];
  console.log(`switchboard at ${url}`);

  step("Start a local supervisor (runs each job's puppet as a process: no isolation)");
  const supervisor = TmlProcess.start([
    "supervisor",
    "local",
    "--switchboard",
    url,
    "--id",
    registered.supervisor_id,
    "--token-file",
    `${dataDir}/supervisor.token`,
    "--state-dir",
    `${dataDir}/supervisor`,
  ], { env: { ...env, TML_LOG_LEVEL: "info" } });
  processes.push(supervisor);
  await supervisor.waitFor(/connected to the switchboard/, 60_000);
  console.log("supervisor connected");

  step("Log in and enqueue a job, as a CI script would");
  const clientEnv = { TML_API_URL: url };
  await tml(
    ["login", "demo", "demo-password"],
    clientEnv,
    () => "(token stored in ~/.config/tml/credentials.json)",
  );
  const enqueued = await tml(
    [
      "job",
      "enqueue",
      "0".repeat(64),
      "--tag-config",
      "board:demo",
      "--parameters",
      JSON.stringify({
        greeting: { value: "hello from the demo", secret: false },
        token: { value: "s3cret", secret: true },
      }),
      "--workload",
      'echo "greeting: $(cat $TML_PARAMETERS_DIR/greeting)"; echo "secret file mode: $(stat -c %a $TML_PARAMETERS_DIR/token)"; uname -a',
    ],
    clientEnv,
    (stdout) => `job_id: ${JSON.parse(stdout).job_id}  state: ${JSON.parse(stdout).state}`,
  );
  const jobId = JSON.parse(enqueued.stdout).job_id;

  step(`Wait for job ${jobId}`);
  const waited = await tml(["job", "wait", jobId, "--timeout", "2m"], clientEnv, (stdout) => {
    const job = JSON.parse(stdout);
    return `state: ${job.state}  exit_status: ${job.exit_status}  (${job.exit_message})`;
  });
  const final = JSON.parse(waited.stdout);

  step("The workload's output (from the supervisor's console)");
  console.log(supervisor.stdout.trimEnd());

  step("Job history: every state change with its time and actor");
  await tml(["job", "history", jobId], { ...clientEnv, TML_OUTPUT: "table" });

  console.log(
    `\n\x1b[1mJob ${jobId} ended with ${final.exit_status}\x1b[0m (tml job wait exit code ${waited.code})`,
  );
  console.log(`Demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (final.exit_status !== "workload_finished_success") Deno.exitCode = 1;
} finally {
  for (const process of processes.reverse()) await process.kill();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
