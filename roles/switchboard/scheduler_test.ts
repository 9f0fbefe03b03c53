import { assertEquals } from "../../lib/testing/asserts.ts";
import { canRunOn, Scheduler } from "./scheduler.ts";
import { parseTagFilter } from "../../lib/tags/mod.ts";

const SUP_A = "00000000-0000-4000-8000-00000000000a";
const SUP_B = "00000000-0000-4000-8000-00000000000b";
const anyRun = ["run_job_on_supervisor:*"];

function job(jobId: string, tagConfig: string, runPermissions: string[] = anyRun) {
  return { jobId, tagConfig, runPermissions };
}

Deno.test("Scheduler.enqueue() hands a job to an idle eligible supervisor at once", () => {
  const scheduler = new Scheduler();
  assertEquals(
    scheduler.supervisorIdle({ supervisorId: SUP_A, tags: ["board:nrf52840dk"] }),
    undefined,
  );
  assertEquals(scheduler.enqueue(job("j1", "board:nucleo")), undefined);
  assertEquals(scheduler.enqueue(job("j2", "board:nrf52*"))?.supervisorId, SUP_A);
  assertEquals(scheduler.idleCount, 0);
  assertEquals(scheduler.queuedCount, 1);
});

Deno.test("Scheduler.supervisorIdle() takes the oldest job it can run (FIFO)", () => {
  const scheduler = new Scheduler();
  scheduler.enqueue(job("j1", "board:nucleo"));
  scheduler.enqueue(job("j2", "board:nrf52840dk"));
  scheduler.enqueue(job("j3", ""));
  const taken = scheduler.supervisorIdle({ supervisorId: SUP_A, tags: ["board:nrf52840dk"] });
  assertEquals(taken?.jobId, "j2");
  const next = scheduler.supervisorIdle({ supervisorId: SUP_A, tags: ["board:nrf52840dk"] });
  assertEquals(next?.jobId, "j3");
});

Deno.test("Scheduler.dequeue() removes a job so no supervisor gets it", () => {
  const scheduler = new Scheduler();
  scheduler.enqueue(job("j1", ""));
  assertEquals(scheduler.dequeue("j1"), true);
  assertEquals(scheduler.dequeue("j1"), false);
  assertEquals(scheduler.supervisorIdle({ supervisorId: SUP_A, tags: [] }), undefined);
  assertEquals(scheduler.isIdle(SUP_A), true);
});

Deno.test("canRunOn() requires the owner's permission for that supervisor", () => {
  const filter = parseTagFilter(`supervisor:${SUP_B}`);
  const supervisorB = { supervisorId: SUP_B, tags: [] };
  assertEquals(
    canRunOn(job("j", "", [`run_job_on_supervisor:${SUP_A}`]), filter, supervisorB),
    false,
  );
  assertEquals(
    canRunOn(job("j", "", [`run_job_on_supervisor:${SUP_B}`]), filter, supervisorB),
    true,
  );
  assertEquals(canRunOn(job("j", "", ["admin"]), filter, supervisorB), true);
  assertEquals(canRunOn(job("j", "", ["admin"]), filter, { supervisorId: SUP_A, tags: [] }), false);
});
