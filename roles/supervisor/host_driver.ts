/**
 * The interface every kind of host implements: local processes now, QEMU VMs and netbooted
 * boards next. The job runner and the conformance suite (`host_driver_conformance.ts`) are the
 * same for all of them.
 *
 * A driver brings up one host for one job and reports what happens through `HostEvents`:
 *
 *   start() ─> progress("fetching_image" | "allocating" | "booting" …)* ─> ready()
 *      │                                                                    │
 *      │ rejects with HostStartError            output(bytes)* ──────────────┤
 *      v                                                                    v
 *   (nothing left behind)        workloadFinished(result) | terminateRequested() | hostLost(loss)
 *
 * Contract, checked by the conformance suite:
 * - `start` resolves with a `RunningHost` once the host is launched (not necessarily ready),
 *   or rejects with a `HostStartError` saying what failed, having removed what it made. When
 *   `signal` aborts during `start`, it stops early (rejecting, or resolving with a host that
 *   the caller then stops).
 * - The puppet's messages arrive as `ready`, `output`, `workloadFinished` and
 *   `terminateRequested`; a host that dies, hangs (missed heartbeats) or never gets ready is
 *   reported once with `hostLost`. Events may repeat after a puppet restart (`ready` again);
 *   the job runner treats them idempotently.
 * - `RunningHost.stop` ends the host and removes everything the job made (processes, scratch
 *   directories, overlays). It is idempotent, and no event arrives once it has resolved.
 * - `listLeftovers` names what a previous run of the supervisor left behind (after a crash or
 *   kill -9): hosts and directories no `RunningHost` of this driver owns; `cleanupLeftovers`
 *   ends and removes them.
 */
import { TmlError } from "../../lib/errors.ts";
import type { JobSpec } from "../../lib/protocol/supervisor.ts";
import type { WorkloadFinished } from "../../lib/protocol/puppet.ts";

/** The workload's result as the puppet reported it. */
export type WorkloadResult = Omit<WorkloadFinished, "type">;

/**
 * How a host ended by itself: `exited` (it powered off, or its puppet ended, without a
 * result), `crashed` (a panic, a killed process), `unresponsive` (missed heartbeats, or never
 * ready in time).
 */
export interface HostLoss {
  kind: "exited" | "crashed" | "unresponsive";
  message: string;
}

export interface HostEvents {
  /** Start-up progress: an `initializing` sub-state, with a message for people. */
  progress(subState: string, message?: string): void;
  /** The puppet authenticated, wrote the job's files and is ready. */
  ready(): void;
  /** The next bytes of the job's console (the workload's output), in order, never repeated. */
  output(bytes: Uint8Array): void;
  workloadFinished(result: WorkloadResult): void;
  /** The host asked to end the job (`tml puppet terminate`). */
  terminateRequested(): void;
  hostLost(loss: HostLoss): void;
}

export interface RunningHost {
  /** Ends the host and removes what the job made; idempotent. `reason` is for logs. */
  stop(reason: string): Promise<void>;
}

/** Something a previous run of the supervisor left behind. */
export interface Leftover {
  /** The job it belonged to, when known. */
  job_id?: string;
  /** What it is, for the log: `directory /var/lib/tml/jobs/…`, `process 1234`. */
  description: string;
}

/** Where the supervisor opens TCP connections to reach a port of a job's host. */
export interface HostAddress {
  hostname: string;
  port: number;
}

export interface HostDriver {
  /** The kind of host, sent in the supervisor's hello: `local`, `qemu`, `netboot`. */
  readonly name: string;
  start(job: JobSpec, events: HostEvents, signal: AbortSignal): Promise<RunningHost>;
  listLeftovers(): Promise<Leftover[]>;
  /** Ends and removes every leftover; returns what it removed. */
  cleanupLeftovers(): Promise<Leftover[]>;
  /**
   * Where TCP port `port` of the running job's host is reached from the supervisor, for the
   * rendezvous proxy (`rendezvous_agent.ts`): the local host is 127.0.0.1 with the same port, a
   * QEMU guest a hostfwd of its user network. Undefined when the driver runs no such job or
   * cannot reach that port; a driver without it exposes nothing.
   */
  hostAddress?(jobId: string, port: number): HostAddress | undefined;
}

/** The host could not be started: the job ends with `supervisor_host_start_error`. */
export class HostStartError extends TmlError {
  constructor(message: string, cause?: unknown) {
    super("host_start_error", message, { status: 500, cause });
  }
}
