import { assertEquals } from "../../lib/testing/asserts.ts";
import { ConsoleFollower } from "./console_follower.ts";

const text = (chunks: Uint8Array[]) => chunks.map((chunk) => new TextDecoder().decode(chunk));
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await tick(10);
  }
}

Deno.test("ConsoleFollower passes on whole lines, then a partial line once writing pauses", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/console.log`;
  const chunks: Uint8Array[] = [];
  const follower = new ConsoleFollower(path, (bytes) => chunks.push(bytes));
  try {
    follower.start();
    await tick(150); // The file does not exist yet.
    const file = await Deno.open(path, { write: true, create: true, append: true });
    await file.write(new TextEncoder().encode("line one\nline t"));
    // The whole line goes first, on its own; the partial one only at a later poll that finds
    // nothing new (how much later depends on the machine's load, so only the order is tested).
    await until(() => chunks.length >= 2);
    assertEquals(text(chunks), ["line one\n", "line t"]);
    await file.write(new TextEncoder().encode("wo\nlast"));
    file.close();
    await follower.stop();
    assertEquals(text(chunks).join(""), "line one\nline two\nlast");
  } finally {
    await follower.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
