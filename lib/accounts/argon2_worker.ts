/**
 * The worker thread behind `passwords.ts`: each Argon2 hash or verification takes tens of
 * milliseconds of synchronous WASM, so it runs here and the switchboard's event loop never
 * stalls on a login. Requests are answered by id; a failure is answered, never thrown.
 */
import { parentPort } from "node:worker_threads";
import { type Argon2Request, computeArgon2 } from "./argon2_compute.ts";

export type Argon2Reply =
  | { id: number; ok: true; value: string | boolean }
  | { id: number; ok: false; error: string };

parentPort?.on("message", async (message: Argon2Request & { id: number }) => {
  const { id, ...request } = message;
  let reply: Argon2Reply;
  try {
    reply = { id, ok: true, value: await computeArgon2(request as Argon2Request) };
  } catch (error) {
    // Only the error's name: its message could in principle quote the input.
    reply = { id, ok: false, error: error instanceof Error ? error.name : "Error" };
  }
  parentPort!.postMessage(reply);
});
