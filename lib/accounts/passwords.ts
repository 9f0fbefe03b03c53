/**
 * Password hashes: Argon2id in PHC format through hash-wasm. Verification reads PHC strings
 * with any parameters, so hashes written by other Argon2 libraries (the operator guide's
 * `$argon2id$v=19$m=65536,t=3,p=4$...`) keep working.
 *
 * Each hash costs tens of milliseconds of synchronous WASM, so it runs on a worker thread
 * (`argon2_worker.ts`) that keeps the process alive only while it has work, so a CLI that
 * hashed one password still exits. Where no worker can start (a single-file bundle without
 * the worker module), the work runs on the calling thread instead.
 */
import { Worker } from "node:worker_threads";
import { type Argon2Request, computeArgon2 } from "./argon2_compute.ts";
import type { Argon2Reply } from "./argon2_worker.ts";

/** OWASP's baseline Argon2id parameters: 19 MiB, 2 passes, 1 lane. */
const PARAMS = { memorySize: 19_456, iterations: 2, parallelism: 1, hashLength: 32 };

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return await argon2Thread.run({ op: "hash", password, salt, params: PARAMS }) as string;
}

/** Whether `password` matches the PHC string; a malformed hash never matches. */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  if (!phc.startsWith("$argon2")) return false;
  try {
    return await argon2Thread.run({ op: "verify", password, hash: phc }) === true;
  } catch (error) {
    if (error instanceof Argon2InputError) return false;
    throw error;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Verifies against a fixed dummy hash with the same parameters, so a login for an unknown user
 * costs the same time as one for a known user and does not reveal which names exist.
 */
export async function burnVerification(password: string): Promise<void> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  await verifyPassword(await dummyHash, password);
}

/** Argon2 refused its input (a malformed hash), as opposed to the worker failing. */
class Argon2InputError extends Error {}

/**
 * Runs Argon2 requests on one lazily started worker, answered by id. If the worker cannot
 * start or dies, its pending requests and all later ones run on the calling thread.
 */
export class Argon2Thread {
  #worker: Worker | undefined;
  #inThread = false;
  #nextId = 0;
  readonly #pending = new Map<number, {
    request: Argon2Request;
    resolve(value: string | boolean): void;
    reject(error: Error): void;
  }>();

  constructor(private readonly workerUrl = new URL("./argon2_worker.ts", import.meta.url)) {}

  /** Whether requests now run on the calling thread. */
  get inThread(): boolean {
    return this.#inThread;
  }

  run(request: Argon2Request): Promise<string | boolean> {
    if (this.#inThread) return runInThread(request);
    const worker = this.#worker ??= this.#start();
    const id = this.#nextId++;
    if (this.#pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { request, resolve, reject });
      worker.postMessage({ ...request, id });
    });
  }

  #start(): Worker {
    const worker = new Worker(this.workerUrl);
    worker.unref();
    worker.on("message", (reply: Argon2Reply) => {
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if (reply.ok) waiter?.resolve(reply.value);
      else waiter?.reject(new Argon2InputError(`Argon2 refused its input: ${reply.error}`));
    });
    const fallBack = () => {
      if (this.#inThread) return;
      this.#inThread = true;
      this.#worker = undefined;
      const waiting = [...this.#pending.values()];
      this.#pending.clear();
      for (const { request, resolve, reject } of waiting) {
        runInThread(request).then(resolve, reject);
      }
    };
    worker.on("error", fallBack);
    worker.on("exit", fallBack);
    return worker;
  }
}

async function runInThread(request: Argon2Request): Promise<string | boolean> {
  try {
    return await computeArgon2(request);
  } catch (error) {
    throw new Argon2InputError(`Argon2 refused its input: ${(error as Error).name}`);
  }
}

const argon2Thread = new Argon2Thread();
