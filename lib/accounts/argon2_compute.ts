/**
 * The Argon2 work itself, shared by the worker thread (`argon2_worker.ts`) and the in-thread
 * fallback in `passwords.ts`: a request to hash or verify, and its answer.
 */
import { argon2id, argon2Verify } from "hash-wasm";

export type Argon2Request =
  | {
    op: "hash";
    password: string;
    salt: Uint8Array;
    params: { memorySize: number; iterations: number; parallelism: number; hashLength: number };
  }
  | { op: "verify"; password: string; hash: string };

/** The encoded hash, or whether the password matches; throws on a malformed hash. */
export async function computeArgon2(request: Argon2Request): Promise<string | boolean> {
  if (request.op === "hash") {
    return await argon2id({
      password: request.password,
      salt: request.salt,
      ...request.params,
      outputType: "encoded",
    });
  }
  return await argon2Verify({ password: request.password, hash: request.hash });
}
