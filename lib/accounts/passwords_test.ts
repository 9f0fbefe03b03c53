import { argon2id } from "hash-wasm";
import { assertEquals } from "../testing/asserts.ts";
import { Argon2Thread, hashPassword, verifyPassword } from "./passwords.ts";

Deno.test("verifyPassword() accepts PHC strings written with any Argon2id parameters", async () => {
  for (
    const params of [
      { memorySize: 65_536, iterations: 3, parallelism: 4 },
      { memorySize: 8_192, iterations: 1, parallelism: 2 },
    ]
  ) {
    const phc = await argon2id({
      password: "correct horse",
      salt: crypto.getRandomValues(new Uint8Array(16)),
      hashLength: 32,
      outputType: "encoded",
      ...params,
    });
    assertEquals(
      phc.startsWith(
        `$argon2id$v=19$m=${params.memorySize},t=${params.iterations},p=${params.parallelism}$`,
      ),
      true,
    );
    assertEquals(await verifyPassword(phc, "correct horse"), true);
    assertEquals(await verifyPassword(phc, "battery staple"), false);
  }
});

Deno.test("hashPassword() writes Argon2id PHC strings that verify, with a fresh salt each time", async () => {
  const a = await hashPassword("pw");
  const b = await hashPassword("pw");
  assertEquals(a.startsWith("$argon2id$"), true);
  assertEquals(a === b, false);
  assertEquals(await verifyPassword(a, "pw"), true);
});

Deno.test("verifyPassword() rejects malformed hashes instead of throwing", async () => {
  assertEquals(await verifyPassword("not-a-hash", "pw"), false);
  assertEquals(await verifyPassword("$argon2id$garbage", "pw"), false);
});

/**
 * Written by the reference implementation (libargon2's `argon2` CLI, Debian package `argon2`):
 * `echo -n "correct horse battery staple" | argon2 SALT -id -t T -k M -p P [-l LEN] -e`.
 */
const REFERENCE_HASHES = [
  "$argon2id$v=19$m=65536,t=3,p=4$dG1sc2FsdHNhbHQxMjM0$f75XAmVn2GPi1bdccBWTNX12d2V3abp/x23jNgTCKzY",
  "$argon2id$v=19$m=4096,t=1,p=1$b3RoZXJzYWx0MDAwMDAwMA$P1VRy+C+Qw+61fd/byMDCg",
  "$argon2i$v=19$m=8192,t=2,p=2$bGVnYWN5c2FsdDAwMDAwMA$p2Fsa3lL6fjKBvaDeaB9i+ZUdOiwTGCDw4ZceWMQZa0",
];

Deno.test("verifyPassword() accepts hashes written by the reference Argon2 implementation", async () => {
  for (const phc of REFERENCE_HASHES) {
    assertEquals(await verifyPassword(phc, "correct horse battery staple"), true, phc);
    assertEquals(await verifyPassword(phc, "correct horse battery stapler"), false, phc);
  }
});

Deno.test("verifyPassword() runs off the main thread, so timers fire while it works", async () => {
  const phc = await hashPassword("pw");
  let timerFired = false;
  setTimeout(() => (timerFired = true), 0);
  assertEquals(await verifyPassword(phc, "pw"), true);
  assertEquals(timerFired, true);
});

Deno.test("hashPassword() and verifyPassword() answer concurrent requests each correctly", async () => {
  const passwords = ["a", "b", "c", "d"];
  const hashes = await Promise.all(passwords.map(hashPassword));
  const results = await Promise.all(
    hashes.flatMap((hash, i) => [verifyPassword(hash, passwords[i]), verifyPassword(hash, "x")]),
  );
  assertEquals(results, [true, false, true, false, true, false, true, false]);
});

Deno.test("Argon2Thread.run() falls back to the calling thread when no worker can start", async () => {
  const thread = new Argon2Thread(new URL("./no_such_worker.ts", import.meta.url));
  const hash = await thread.run({
    op: "hash",
    password: "pw",
    salt: new Uint8Array(16),
    params: { memorySize: 1024, iterations: 1, parallelism: 1, hashLength: 16 },
  }) as string;
  assertEquals(thread.inThread, true);
  assertEquals(await thread.run({ op: "verify", password: "pw", hash }), true);
  assertEquals(await thread.run({ op: "verify", password: "no", hash }), false);
});
