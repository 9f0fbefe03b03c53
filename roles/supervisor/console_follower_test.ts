import { assertEquals } from "../../lib/testing/asserts.ts";
import { ConsoleFollower } from "./console_follower.ts";

const text = (chunks: Uint8Array[]) => chunks.map((chunk) => new TextDecoder().decode(chunk));
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    await tick(150);
    assertEquals(text(chunks), ["line one\n"]);
    await tick(250);
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
