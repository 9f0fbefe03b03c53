/**
 * The interface every kind of host implements (local processes now; QEMU VMs and netbooted
 * boards next), so the job runner and the conformance suite are the same for all of them.
 *
 * A driver brings a host up for one job and reports what happens through `HostEvents`:
 *
 *   start() ──> subState("allocating" | "fetching_image" | "booting" …) ──> ready()
 *                                                                           │
 *     workloadFinished(outcome) / terminateRequested() / failed(message) <──┘
 *
 * `start` resolves with a `RunningHost` once the host is launched (not necessarily ready) and
 * rejects with a `HostStartError` when it cannot be started. `RunningHost.stop` tears the host
 * down and removes everything it made; it is idempotent.
 */
import { TmlError } from "../../lib/errors.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import type { WorkloadOutcome } from "../../lib/protocol/puppet.ts";

export interface HostEvents {
  subState(subState: string, message?: string): void;
  ready(): void;
  workloadFinished(outcome: WorkloadOutcome, exitCode?: number, message?: string): void;
  terminateRequested(): void;
  /** The host died or stopped answering on its own. */
  failed(message: string): void;
  output(stream: "stdout" | "stderr", data: string): void;
}

export interface RunningHost {
  stop(): Promise<void>;
}

export interface HostDriver {
  readonly name: string;
  start(job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost>;
  /** Ends whatever a previous run of this supervisor left behind (after a crash or kill -9). */
  cleanupLeftovers(): Promise<void>;
}

/** The host could not be started: the job ends with `supervisor_host_start_error`. */
export class HostStartError extends TmlError {
  constructor(message: string, cause?: unknown) {
    super("host_start_error", message, { status: 500, cause });
  }
}
