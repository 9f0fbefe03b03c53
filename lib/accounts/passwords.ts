/**
 * Password hashes: Argon2id in PHC format through hash-wasm. Verification reads PHC strings
 * with any parameters, so hashes written by other Argon2 libraries (the operator guide's
 * `$argon2id$v=19$m=65536,t=3,p=4$...`) keep working.
 */
import { argon2id, argon2Verify } from "hash-wasm";

/** OWASP's baseline Argon2id parameters: 19 MiB, 2 passes, 1 lane. */
const PARAMS = { memorySize: 19_456, iterations: 2, parallelism: 1, hashLength: 32 };

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return await argon2id({ password, salt, ...PARAMS, outputType: "encoded" });
}

/** Whether `password` matches the PHC string; a malformed hash never matches. */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  if (!phc.startsWith("$argon2")) return false;
  try {
    return await argon2Verify({ password, hash: phc });
  } catch {
    return false;
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
