/**
 * `./tmlw demo`: a whole local testbed and one real VM job through it, narrated. Builds (or
 * reuses) the test guest image, starts a switchboard on embedded PGlite, an image store and a
 * QEMU supervisor, pushes the image, enqueues a job with a parameter and a workload exactly as
 * a CI script would, streams the VM's console, and prints the final status and the time each
 * phase took.
 */
import { buildTestGuest } from "../images/test_guest/build.ts";
import { runTml, TmlProcess, type TmlRunResult } from "./support/tml_process.ts";

const MAIN_TS = new URL("../main.ts", import.meta.url).pathname;
const started = Date.now();
const dataDir = await Deno.makeTempDir({ prefix: "tml-demo-" });
const home = `${dataDir}/home`;
await Deno.mkdir(home);
const env = { HOME: home, XDG_CONFIG_HOME: `${home}/.config`, TML_LOG_LEVEL: "warn" };
const processes: TmlProcess[] = [];
const phases: Array<{ name: string; seconds: number }> = [];
let phaseStarted = Date.now();

function step(text: string): void {
  console.log(`\n\x1b[1m==> ${text}\x1b[0m  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/** Ends the current phase under `name` (for the timing table at the end). */
function phaseDone(name: string): void {
  phases.push({ name, seconds: (Date.now() - phaseStarted) / 1000 });
  phaseStarted = Date.now();
}

async function tml(
  args: string[],
  extraEnv: Record<string, string> = {},
  show: (stdout: string) => string = (stdout) => stdout,
): Promise<TmlRunResult> {
  // A secret parameter's value is not echoed, as tml itself never prints one.
  const shown = args.map((arg, i) =>
    args[i - 1] === "--secret-parameter" ? arg.replace(/=.*/s, "=<secret>") : arg
  );
  console.log(`$ tml ${shown.map((arg) => /[\s"'{}$;<>]/.test(arg) ? `'${arg}'` : arg).join(" ")}`);
  const result = await runTml(args, { env: { ...env, ...extraEnv } });
  if (result.stdout.trim() !== "") console.log(show(result.stdout).trimEnd());
  if (result.code !== 0 && !args.includes("wait")) {
    console.error(result.stderr);
    throw new Error(`tml ${args[0]} ${args[1] ?? ""} failed with exit code ${result.code}`);
  }
  return result;
}

async function startRole(args: string[], ready: RegExp, timeoutMs = 60_000) {
  const process = TmlProcess.start(args, { env: { ...env, TML_LOG_LEVEL: "info" } });
  processes.push(process);
  return { process, match: await process.waitFor(ready, timeoutMs) };
}

try {
  step("Build the test guest image from Debian packages (cached: built once per machine)");
  const guest = await buildTestGuest({ log: (line) => console.log(`  ${line}`) });
  console.log(`image ${guest.imageId}`);
  phaseDone("build or reuse the image");

  step("Create the first admin user and register a supervisor (tml admin talks to the database)");
  const switchboardData = `${dataDir}/switchboard`;
  const admin = (args: string[]) => tml(["admin", "--data-dir", switchboardData, ...args]);
  await admin([
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
    (await admin([
      "supervisor",
      "register",
      "qemu-1",
      "--tags",
      "board:demo-vm",
      "--token-file",
      `${dataDir}/supervisor.token`,
    ])).stdout,
  );

  step("Start an image store and a switchboard on embedded PGlite");
  const uploadToken = `${dataDir}/upload.token`;
  await Deno.writeTextFile(uploadToken, crypto.randomUUID(), { mode: 0o600 });
  const storeUrl = (await startRole([
    "image-store",
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--root",
    `${dataDir}/image-store`,
    "--upload-token-file",
    uploadToken,
  ], /listening on (http:\/\/\S+)/)).match[1];
  console.log(`image store at ${storeUrl}`);
  const url = (await startRole([
    "switchboard",
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    switchboardData,
    "--image-store-url",
    storeUrl,
  ], /listening on (http:\/\/\S+)/)).match[1];
  console.log(`switchboard at ${url}`);
  phaseDone("start switchboard and image store");

  step("Push the image (only the blobs the store lacks, each verified)");
  await tml(["image", "push", guest.storeDir, "--store", storeUrl, "--token-file", uploadToken]);
  phaseDone("push the image");

  step("Start a QEMU supervisor (each job gets a fresh VM booted from its image)");
  await startRole([
    "supervisor",
    "qemu",
    "--switchboard",
    url,
    "--image-store",
    storeUrl,
    "--id",
    registered.supervisor_id,
    "--token-file",
    `${dataDir}/supervisor.token`,
    "--state-dir",
    `${dataDir}/supervisor`,
  ], /connected to the switchboard/);
  console.log("supervisor connected");
  phaseDone("start the supervisor");

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
      guest.imageId,
      "--tag-config",
      "board:demo-vm",
      "--parameters",
      JSON.stringify({ greeting: { value: "hello from the demo", secret: false } }),
      "--secret-parameter",
      "token=s3cret-demo-value",
      "--workload",
      'echo "greeting: $(cat $TML_PARAMETERS_DIR/greeting)"; echo "secret file mode: $(stat -c %a $TML_PARAMETERS_DIR/token), value: $(cat $TML_PARAMETERS_DIR/token)"; uname -sr',
    ],
    clientEnv,
    (stdout) => `job_id: ${JSON.parse(stdout).job_id}  state: ${JSON.parse(stdout).state}`,
  );
  const jobId = JSON.parse(enqueued.stdout).job_id;

  step(`Stream job ${jobId}'s console (tml job logs -f; the secret's value is redacted)`);
  console.log(`$ tml job logs -f ${jobId}`);
  const follow = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN_TS, "job", "logs", "-f", jobId],
    env: { ...env, ...clientEnv, NO_COLOR: "1" },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const waited = await tml(["job", "wait", jobId, "--timeout", "5m"], clientEnv, () => "");
  await follow.status;
  const final = JSON.parse(waited.stdout);
  phaseDone("run the job");

  step("Job history: every state change, its time and actor, and how long each phase took");
  await tml(["job", "history", jobId], { ...clientEnv, TML_OUTPUT: "table" });

  console.log(
    `\n\x1b[1mJob ${jobId} ended with ${final.exit_status}\x1b[0m (${final.exit_message})`,
  );
  console.log("\nTime spent:");
  for (const { name, seconds } of phases) {
    console.log(`  ${name.padEnd(36)} ${seconds.toFixed(1).padStart(6)} s`);
  }
  console.log(
    `  ${"total".padEnd(36)} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`,
  );
  if (final.exit_status !== "workload_finished_success") Deno.exitCode = 1;
} finally {
  for (const process of processes.reverse()) await process.kill();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
