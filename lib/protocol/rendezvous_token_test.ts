import { Buffer } from "node:buffer";
import { assertEquals, assertRejects } from "../testing/asserts.ts";
import {
  importPublicKey,
  TokenError,
  tokenKeyId,
  TokenSigner,
  verifyToken,
} from "./rendezvous_token.ts";

const JOB = "6f1c9a52-6a3e-4a8e-9d1e-2f6a0c1b2d3e";
const USER = "0b7e2c1d-3f4a-4b5c-8d9e-0f1a2b3c4d5e";

async function keysOf(...signers: TokenSigner[]): Promise<Map<string, CryptoKey>> {
  return new Map(
    await Promise.all(
      signers.map(async (s) => [s.publicKey.kid, await importPublicKey(s.publicKey)] as const),
    ),
  );
}

Deno.test("verifyToken() returns the claims of a token signed with a known key", async () => {
  const signer = await TokenSigner.generate();
  const now = Date.now();
  const token = await signer.sign({
    typ: "rendezvous_user",
    job_id: JOB,
    user_id: USER,
    iat: now,
    exp: now + 60_000,
  });
  assertEquals(tokenKeyId(token), signer.publicKey.kid);
  const claims = await verifyToken(token, await keysOf(signer));
  assertEquals(claims, {
    typ: "rendezvous_user",
    job_id: JOB,
    user_id: USER,
    iat: now,
    exp: now + 60_000,
    kid: signer.publicKey.kid,
  });
});

Deno.test("verifyToken() refuses expired, forged, tampered, unknown and malformed tokens", async () => {
  const signer = await TokenSigner.generate();
  const other = await TokenSigner.generate();
  const keys = await keysOf(signer);
  const now = Date.now();
  const grant = await signer.sign({
    typ: "rendezvous_grant",
    supervisor_id: USER,
    job_id: JOB,
    iat: now,
    exp: now + 1_000,
  });
  const expired = await assertRejects(() => verifyToken(grant, keys, now + 1_000), TokenError);
  assertEquals(expired.code, "expired_token");

  const [body, signature] = grant.split(".");
  const claims = JSON.parse(Buffer.from(body, "base64url").toString());
  const widened = Buffer.from(JSON.stringify({ ...claims, job_id: USER })).toString("base64url");
  const tampered = await assertRejects(
    () => verifyToken(`${widened}.${signature}`, keys),
    TokenError,
  );
  assertEquals(tampered.message, "Cannot verify token: it has a bad signature");

  // A key that claims another's kid still fails on the signature.
  const forged = (await other.sign({ ...claims, typ: "rendezvous_grant" })).split(".")[1];
  await assertRejects(() => verifyToken(`${body}.${forged}`, keys), TokenError, "bad signature");

  const unknown = await assertRejects(
    async () => verifyToken(await other.sign({ ...claims }), keys),
    TokenError,
  );
  assertEquals(unknown.code, "unknown_key");

  for (const garbage of ["", "abc", ".", "x.y", `${"a".repeat(5000)}.b`, "e30.AAAA"]) {
    const error = await assertRejects(() => verifyToken(garbage, keys), TokenError);
    assertEquals(error.message, "Cannot verify token: it is malformed");
    assertEquals(error.status, 401);
  }
});
