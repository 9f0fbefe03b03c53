import { assertEquals } from "../../lib/testing/asserts.ts";
import { GcLock } from "./gc_lock.ts";

/** A hold of the lock that lasts until `release()`; `entered` resolves once it holds it. */
function hold(lock: GcLock, exclusive: boolean, events: string[], name: string) {
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const inside = new Promise<void>((resolve) => entered = resolve);
  const work = async () => {
    events.push(`${name} in`);
    entered();
    await gate;
    events.push(`${name} out`);
  };
  const done = exclusive ? lock.exclusive(work) : lock.shared(work);
  return { release, entered: inside, done };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("GcLock.exclusive() waits for every shared holder, which run side by side", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lock = new GcLock(dir);
    const events: string[] = [];
    const first = hold(lock, false, events, "publish 1");
    const second = hold(lock, false, events, "publish 2");
    await Promise.all([first.entered, second.entered]);
    const gc = hold(lock, true, events, "gc");
    await pause(100);
    assertEquals(events.includes("gc in"), false);
    first.release();
    await first.done;
    await pause(50);
    assertEquals(events.includes("gc in"), false);
    second.release();
    await second.done;
    await gc.entered;
    gc.release();
    await gc.done;
    assertEquals(events.slice(-2), ["gc in", "gc out"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GcLock.shared() waits while gc holds the lock, and after a failure", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lock = new GcLock(dir);
    const events: string[] = [];
    const gc = hold(lock, true, events, "gc");
    await gc.entered;
    const publish = hold(lock, false, events, "publish");
    await pause(100);
    assertEquals(events, ["gc in"]);
    gc.release();
    await publish.entered;
    publish.release();
    await Promise.all([gc.done, publish.done]);
    assertEquals(events, ["gc in", "gc out", "publish in", "publish out"]);
    // A holder that throws still lets go.
    await lock.exclusive(() => Promise.reject(new Error("boom"))).catch(() => {});
    assertEquals(await lock.shared(() => Promise.resolve("free")), "free");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
