import { assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { TmlError } from "../../lib/errors.ts";
import { UploadAuth } from "./upload_auth.ts";

const USER = "6f1c2a4e-1d7b-4c1e-9a53-0c5f1b2d3e4f";

/** A switchboard's whoami answer per token, counting the calls made. */
function whoami(permissionsByToken: Record<string, string[]>) {
  const calls: string[] = [];
  const fetcher = (_url: string | URL | Request, init?: RequestInit) => {
    const token = new Headers(init?.headers).get("authorization")?.replace("Bearer ", "") ?? "";
    calls.push(token);
    const permissions = permissionsByToken[token];
    if (permissions === undefined) return Promise.resolve(new Response("{}", { status: 401 }));
    return Promise.resolve(Response.json({ user_id: USER, name: "ada", permissions }));
  };
  return { calls, fetch: fetcher as typeof fetch };
}

async function rejection(promise: Promise<unknown>): Promise<TmlError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TmlError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

Deno.test("UploadAuth.authorize() accepts the configured upload token only", async () => {
  const auth = new UploadAuth({ uploadToken: "s3cret", cacheMs: 1000 });
  assertEquals(await auth.authorize("Bearer s3cret"), {
    name: "upload-token",
    via: "upload_token",
  });
  assertEquals((await rejection(auth.authorize("Bearer s3cre"))).status, 401);
  assertEquals((await rejection(auth.authorize(null))).status, 401);
  assertEquals((await rejection(auth.authorize("Basic s3cret"))).status, 401);
});

Deno.test("UploadAuth.authorize() refuses everything when no upload path is configured", async () => {
  const auth = new UploadAuth({ cacheMs: 1000 });
  const error = await rejection(auth.authorize("Bearer anything"));
  assertEquals([error.status, error.code], [403, "uploads_disabled"]);
});

Deno.test("UploadAuth.authorize() asks the switchboard and needs push_image or admin", async () => {
  const switchboard = whoami({ pusher: ["push_image"], boss: ["admin"], reader: ["list_jobs"] });
  const auth = new UploadAuth({
    switchboardUrl: "http://switchboard.invalid/",
    cacheMs: 1000,
    fetch: switchboard.fetch,
  });
  assertEquals((await auth.authorize("Bearer pusher")).via, "switchboard");
  assertEquals((await auth.authorize("bearer boss")).name, "ada");
  const forbidden = await rejection(auth.authorize("Bearer reader"));
  assertEquals([forbidden.status, forbidden.code], [403, "forbidden"]);
  assertEquals((await rejection(auth.authorize("Bearer nobody"))).status, 401);
});

Deno.test("UploadAuth.authorize() caches positive answers for a while, refusals not at all", async () => {
  let now = 0;
  const switchboard = whoami({ pusher: ["push_image"] });
  const auth = new UploadAuth({
    switchboardUrl: "http://switchboard.invalid",
    cacheMs: 1000,
    fetch: switchboard.fetch,
    now: () => now,
  });
  await auth.authorize("Bearer pusher");
  await auth.authorize("Bearer pusher");
  await rejection(auth.authorize("Bearer nobody"));
  await rejection(auth.authorize("Bearer nobody"));
  assertEquals(switchboard.calls, ["pusher", "nobody", "nobody"]);
  now = 1001;
  await auth.authorize("Bearer pusher");
  assertEquals(switchboard.calls.length, 4);
});

Deno.test("UploadAuth.authorize() answers 503 when the switchboard is unreachable", async () => {
  const auth = new UploadAuth({
    switchboardUrl: "http://127.0.0.1:1",
    cacheMs: 1000,
  });
  const error = await rejection(auth.authorize("Bearer token"));
  assertEquals([error.status, error.code], [503, "switchboard_unreachable"]);
});

Deno.test("UploadAuth.authorize() never puts the token in an error", async () => {
  const auth = new UploadAuth({ uploadToken: "right", cacheMs: 0 });
  const error = await rejection(auth.authorize("Bearer wrong-token-value"));
  assertEquals(error.message.includes("wrong-token-value"), false);
  await assertRejects(() => auth.authorize("Bearer "));
});
