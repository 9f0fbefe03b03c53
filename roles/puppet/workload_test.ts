import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { PuppetState } from "./puppet_state.ts";
import { Workload } from "./workload.ts";

const JOB_ID = "7c6b5a49-3d2e-4f10-8a9b-0c1d2e3f4a5b";

async function withState(fn: (root: string, state: PuppetState) => Promise<void>) {
  const root = await Deno.makeTempDir();
  try {
    await fn(root, await PuppetState.open(root, JOB_ID));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

Deno.test("Workload.start() runs the command in its work dir with its environment and reports the exit code", async () => {
  await withState(async (root, state) => {
    const workload = await Workload.start(
      'echo "job $TML_JOB_ID in $(pwd) with $EXTRA"; echo oops >&2; exit 3',
      { state, jobId: JOB_ID, workdir: `${root}/work`, env: { EXTRA: "extra" } },
    );
    assertEquals(await workload.finished, {
      outcome: "error",
      exit_code: 3,
      message: "exit code 3",
    });
    assertEquals(
      await Deno.readTextFile(state.outputPath("stdout")),
      `job ${JOB_ID} in ${await Deno.realPath(`${root}/work`)} with extra\n`,
    );
    assertEquals(await Deno.readTextFile(state.outputPath("stderr")), "oops\n");
  });
});

Deno.test("Workload.start() reports success for exit code 0", async () => {
  await withState(async (root, state) => {
    const workload = await Workload.start("true", {
      state,
      jobId: JOB_ID,
      workdir: `${root}/work`,
      env: {},
    });
    assertEquals((await workload.finished).outcome, "success");
  });
});

Deno.test("Workload.adopt() follows a workload a previous puppet started and gets its exit code", async () => {
  await withState(async (root, state) => {
    const first = await Workload.start("sleep 0.5; exit 7", {
      state,
      jobId: JOB_ID,
      workdir: `${root}/work`,
      env: {},
    });
    // A restarted puppet only has the state directory to go on.
    const reopened = await PuppetState.open(root, JOB_ID);
    const adopted = await Workload.adopt(reopened, JOB_ID);
    assert(adopted !== undefined);
    assertEquals(adopted.pid, first.pid);
    assertEquals(await adopted.finished, {
      outcome: "error",
      exit_code: 7,
      message: "exit code 7",
    });
    await first.finished;
  });
});

Deno.test("Workload.adopt() finds nothing for a new job and says unknown when the exit code is lost", async () => {
  await withState(async (root, state) => {
    assertEquals(await Workload.adopt(state, JOB_ID), undefined);
    const workload = await Workload.start("sleep 30", {
      state,
      jobId: JOB_ID,
      workdir: `${root}/work`,
      env: {},
    });
    const adopted = (await Workload.adopt(state, JOB_ID))!;
    Deno.kill(-workload.pid, "SIGKILL"); // Dies without writing its exit code.
    assertEquals((await adopted.finished).outcome, "unknown");
    await workload.finished;
  });
});

Deno.test("Workload.stop() ends the whole process group, background children included", async () => {
  await withState(async (root, state) => {
    const workload = await Workload.start(
      `sleep 60 & echo $! > "${root}/child.pid"; trap '' TERM; sleep 60`,
      { state, jobId: JOB_ID, workdir: `${root}/work`, env: {} },
    );
    let childPid: number | undefined;
    while (childPid === undefined) {
      childPid = Number(await Deno.readTextFile(`${root}/child.pid`).catch(() => "")) || undefined;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert(alive(childPid));
    // The shell ignores SIGTERM, so this also takes the SIGKILL after the grace.
    await workload.stop(200);
    assert(!alive(childPid), "the background child survived");
    assert(!alive(workload.pid), "the workload survived");
  });
});

Deno.test("PuppetState.open() keeps a job's state across opens and discards another job's", async () => {
  await withState(async (root, state) => {
    await state.writeResult({ outcome: "success", exit_code: 0 });
    assertEquals(await (await PuppetState.open(root, JOB_ID)).readResult(), {
      outcome: "success",
      exit_code: 0,
    });
    const other = await PuppetState.open(root, "11111111-2222-4333-8444-555555555555");
    assertEquals(await other.readResult(), undefined);
    assertEquals(Deno.statSync(`${root}/.puppet`).mode! & 0o777, 0o700);
  });
});
