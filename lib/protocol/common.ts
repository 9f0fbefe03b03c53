/** Wire types shared by every tml protocol: ids, job parameters, durations on the wire. */
import { z } from "zod";

export const Uuid = z.uuid();
export type Uuid = z.infer<typeof Uuid>;

/** An image id: the SHA-256 of the image manifest's exact bytes, 64 lowercase hex digits. */
export const ImageId = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
export type ImageId = z.infer<typeof ImageId>;

/**
 * A job parameter name. It becomes a file name under `/run/tml/parameters/`, so it may not
 * contain a slash, start with a dot, or be empty; Treadmill's names
 * (`gh-actions-runner-encoded-jit-config`) fit.
 */
export const ParameterName = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/,
  "expected 1-128 characters of letters, digits, '.', '_' and '-', not starting with '.' or '-'",
);

/** A job parameter as given at enqueue and as sent to the supervisor that runs the job. */
export const JobParameter = z.strictObject({
  value: z.string().max(1024 * 1024),
  secret: z.boolean().default(false),
});
export type JobParameter = z.infer<typeof JobParameter>;

/** Parameters keyed by name; at most 256 per job. */
export const JobParameters = z.record(ParameterName, JobParameter).refine(
  (parameters) => Object.keys(parameters).length <= 256,
  "expected at most 256 parameters",
);
export type JobParameters = z.infer<typeof JobParameters>;

/** One OpenSSH public key line, e.g. `ssh-ed25519 AAAA... user@host`. */
export const SshPublicKey = z.string().max(16 * 1024).regex(
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( [^\n]*)?$/,
  "expected one OpenSSH public key line",
);

/** A workload command, run by the puppet with `/bin/sh -c` inside the host. */
export const WorkloadCommand = z.string().min(1).max(64 * 1024);
