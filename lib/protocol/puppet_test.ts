import { assert, assertEquals } from "../testing/asserts.ts";
import {
  AuthOk,
  MAX_WORKLOAD_OUTPUT_BYTES,
  PuppetMessage,
  puppetSecretMatches,
  SupervisorToPuppet,
} from "./puppet.ts";

const JOB_ID = "0d7f2a52-2c3e-4a4b-9a8e-1d2c3b4a5f60";

Deno.test("puppetSecretMatches() accepts only the exact secret", () => {
  const secret = "Qm9vdCBzZWNyZXQgb2YgYSBqb2I";
  assert(puppetSecretMatches(secret, secret));
  assert(!puppetSecretMatches(secret + "x", secret));
  assert(!puppetSecretMatches(secret.slice(0, -1), secret));
  assert(!puppetSecretMatches("", secret));
  assert(!puppetSecretMatches(secret.toLowerCase(), secret));
});

Deno.test("PuppetMessage rejects unknown types, extra fields and oversized output", () => {
  assert(PuppetMessage.safeParse({ type: "ready" }).success);
  assert(!PuppetMessage.safeParse({ type: "ready", extra: true }).success);
  assert(!PuppetMessage.safeParse({ type: "launch_missiles" }).success);
  assert(!PuppetMessage.safeParse({ type: "auth", protocol_version: 2, secret: "" }).success);
  const output = (bytes: number) => ({
    type: "workload_output",
    stream: "stdout",
    offset: 0,
    data: btoa("x".repeat(bytes)),
  });
  assert(PuppetMessage.safeParse(output(MAX_WORKLOAD_OUTPUT_BYTES)).success);
  assert(!PuppetMessage.safeParse(output(MAX_WORKLOAD_OUTPUT_BYTES + 3)).success);
  assert(!PuppetMessage.safeParse({ ...output(1), data: "not base64!" }).success);
  assert(
    !PuppetMessage.safeParse({ type: "workload_finished", outcome: "maybe" }).success,
  );
});

Deno.test("SupervisorToPuppet carries the job with its parameters and resume offsets", () => {
  const message = {
    type: "auth_ok",
    job: {
      job_id: JOB_ID,
      parameters: { token: { value: "s3cret", secret: true } },
      ssh_keys: [],
      workload: null,
    },
    heartbeat_interval_ms: 2000,
    output_offsets: { stdout: 10, stderr: 0 },
  };
  const parsed = SupervisorToPuppet.parse(message) as AuthOk;
  assertEquals(parsed.job.parameters.token, { value: "s3cret", secret: true });
  assertEquals(parsed.output_offsets.stdout, 10);
  // A parameter name that would escape the parameters directory is refused.
  const escaping = {
    ...message,
    job: { ...message.job, parameters: { "../etc/passwd": { value: "x", secret: false } } },
  };
  assert(!SupervisorToPuppet.safeParse(escaping).success);
});
