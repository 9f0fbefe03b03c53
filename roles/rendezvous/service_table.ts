/**
 * Which jobs this server exposes, and the user connections it carries to them. A job's entry
 * lives from its supervisor's first `expose` until it is withdrawn:
 *
 *   expose(job, services) ──> exposed ──(control websocket drops)──> detached ──(reconnect,
 *        │  (public ports        │  ^                                   │        same job)──┐
 *        │   listening)          │  └────────────────────────────────────────────────────────┘
 *        │                       v                                    v
 *        └── withdrawn <── expose(none or another job) | grant expired | supervisor_grace over
 *
 * Withdrawn means gone: listeners closed (the ports refuse connections), open connections cut,
 * pending ones refused. A detached job keeps its ports and its open connections (they run on
 * their own data connections), and refuses new ones until its supervisor is back.
 */
import type { Logger } from "../../lib/log.ts";
import type { ServiceEndpoint } from "../../lib/protocol/api.ts";
import type { ExposedService, RendezvousMetrics, Traffic } from "../../lib/protocol/rendezvous.ts";
import { type ByteStream, splice } from "../../lib/net/splice.ts";
import { RendezvousError } from "./errors.ts";
import type { PortPool } from "./port_pool.ts";
import type { Tickets } from "./tickets.ts";

/** A supervisor's control connection, as the table uses it. */
export interface ControlLink {
  readonly supervisorId: string;
  /** Asks the supervisor to bring a user connection through to `port` on the job's host. */
  open(ticket: string, jobId: string, port: number): void;
  /** Ends the control connection, e.g. when a newer one of the same supervisor replaces it. */
  close(reason: string): void;
}

/** A user connection: its bytes, and how to tell it why it is refused or cut. */
export interface UserSide {
  stream: ByteStream;
  /** The host's port is reached: bytes flow from now on. */
  accepted(): void;
  /** Ends a connection that never reached the host, saying why. */
  refuse(error: RendezvousError): void;
  /** Ends a connection in the middle of its traffic (withdrawn, idle). */
  cut(error: RendezvousError): void;
}

export interface ServiceTableOptions {
  ports: PortPool;
  tickets: Tickets;
  log: Logger;
  /** The host endpoints name. */
  publicHost: string;
  maxConnectionsPerJob: number;
  idleTimeoutMs: number;
  supervisorGraceMs: number;
}

interface Carried {
  port: number;
  lastActive: number;
  /** Cuts the connection, telling the user why. */
  cut(error: RendezvousError): void;
}

interface ExposedJob {
  jobId: string;
  supervisorId: string;
  link?: ControlLink;
  services: Map<number, { name: string; listener: Deno.TcpListener }>;
  connections: Set<Carried>;
  traffic: Traffic;
  expiry?: ReturnType<typeof setTimeout>;
  grace?: ReturnType<typeof setTimeout>;
}

export class ServiceTable {
  readonly #jobs = new Map<string, ExposedJob>();
  readonly #links = new Map<string, ControlLink>();
  readonly #totals = newTraffic();
  readonly #sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly options: ServiceTableOptions) {
    const every = Math.min(Math.max(options.idleTimeoutMs / 4, 50), 5_000);
    this.#sweeper = setInterval(() => this.#sweepIdle(), every);
  }

  /**
   * A supervisor's control connection is up, its grant naming `jobId`. It replaces an older
   * connection of the same supervisor; a job it exposed before is adopted when it is the same,
   * and withdrawn when the supervisor has moved on.
   */
  attach(link: ControlLink, jobId: string | null): void {
    const previous = this.#links.get(link.supervisorId);
    this.#links.set(link.supervisorId, link);
    if (previous !== undefined && previous !== link) {
      previous.close("replaced by a newer connection of the same supervisor");
    }
    const job = this.#jobOf(link.supervisorId);
    if (job === undefined) return;
    if (job.jobId !== jobId) return this.withdraw(job.jobId, "the supervisor moved on");
    job.link = link;
    clearTimeout(job.grace);
  }

  /** A control connection ended: its job waits `supervisorGraceMs` for it to come back. */
  detach(link: ControlLink): void {
    if (this.#links.get(link.supervisorId) !== link) return;
    this.#links.delete(link.supervisorId);
    const job = this.#jobOf(link.supervisorId);
    if (job === undefined) return;
    job.link = undefined;
    this.options.tickets.failJob(job.jobId, supervisorAway());
    job.grace = setTimeout(
      () => this.withdraw(job.jobId, "the supervisor did not come back"),
      this.options.supervisorGraceMs,
    );
  }

  /**
   * Makes `services` the whole set exposed for the link's job (none withdraws it), valid until
   * `expiresAt` (ms) unless renewed. Returns the endpoints users reach them at.
   */
  expose(
    link: ControlLink,
    jobId: string | null,
    services: ExposedService[],
    expiresAt: number,
  ): ServiceEndpoint[] {
    const current = this.#jobOf(link.supervisorId);
    if (current !== undefined && (current.jobId !== jobId || services.length === 0)) {
      this.withdraw(current.jobId, "the supervisor withdrew it");
    }
    if (jobId === null || services.length === 0) return [];
    const ports = new Set(services.map((service) => service.port));
    if (ports.size !== services.length) {
      throw new RendezvousError(
        "bad_request",
        `Cannot expose job "${jobId}": a port is listed twice`,
      );
    }
    let job = this.#jobs.get(jobId);
    if (job !== undefined && job.supervisorId !== link.supervisorId) {
      throw new RendezvousError(
        "forbidden",
        `Cannot expose job "${jobId}": another supervisor exposes it`,
      );
    }
    if (job === undefined) {
      job = {
        jobId,
        supervisorId: link.supervisorId,
        services: new Map(),
        connections: new Set(),
        traffic: newTraffic(),
      };
      this.#jobs.set(jobId, job);
    }
    job.link = link;
    for (const [port, service] of job.services) {
      if (!ports.has(port)) this.#unexpose(job, port, service.listener);
    }
    for (const service of services) this.#exposeOne(job, service);
    clearTimeout(job.expiry);
    const exposed = job;
    exposed.expiry = setTimeout(
      () => this.withdraw(exposed.jobId, "its grant expired"),
      Math.max(0, expiresAt - Date.now()),
    );
    return this.#endpoints(job);
  }

  /** Removes everything about a job: its ports refuse connections from now on. */
  withdraw(jobId: string, why: string): void {
    const job = this.#jobs.get(jobId);
    if (job === undefined) return;
    this.#jobs.delete(jobId);
    clearTimeout(job.expiry);
    clearTimeout(job.grace);
    for (const [port, service] of job.services) this.#unexpose(job, port, service.listener);
    const gone = new RendezvousError("not_found", "Cannot connect: the job's services are gone");
    this.options.tickets.failJob(jobId, gone);
    this.options.log.info("job withdrawn", { job_id: jobId, why });
  }

  /**
   * Carries one user connection to port `port` of the job's host until either side ends it;
   * a refusal (no such service, limit reached, host unreachable) goes to `user.refuse`.
   */
  async carry(jobId: string, port: number, user: UserSide): Promise<void> {
    const job = this.#jobs.get(jobId);
    if (job === undefined || !job.services.has(port)) {
      this.#totals.connections_refused++;
      return user.refuse(
        new RendezvousError("not_found", `Cannot connect: the job exposes no port ${port} here`),
      );
    }
    if (job.link === undefined) return user.refuse(supervisorAway());
    if (job.connections.size >= this.options.maxConnectionsPerJob) {
      this.#count(job, "connections_refused", 1);
      return user.refuse(
        new RendezvousError(
          "too_many_connections",
          `Cannot connect: the job has ${job.connections.size} connections, the most allowed`,
        ),
      );
    }
    let data: Deno.Conn | undefined;
    let cut: RendezvousError | undefined;
    const carried: Carried = {
      port,
      lastActive: performance.now(),
      cut: (error) => {
        if (cut !== undefined) return;
        cut = error;
        // Before the data connection exists the pending ticket fails instead (withdraw).
        if (data === undefined) return;
        user.cut(error);
        close(data);
      },
    };
    job.connections.add(carried);
    this.#count(job, "connections_open", 1);
    this.#count(job, "connections_total", 1);
    try {
      const { ticket, connection } = this.options.tickets.issue(jobId);
      job.link.open(ticket, jobId, port);
      try {
        data = await connection;
      } catch (error) {
        if (!(error instanceof RendezvousError)) throw error;
        if (error.code === "host_unreachable") this.#count(job, "connections_refused", 1);
        return user.refuse(cut ?? error);
      }
      if (cut !== undefined) {
        close(data);
        return user.refuse(cut);
      }
      user.accepted();
      await splice(user.stream, data, {
        onBytes: (direction, bytes) => {
          carried.lastActive = performance.now();
          this.#count(job, direction === "a_to_b" ? "bytes_to_host" : "bytes_from_host", bytes);
        },
      });
    } finally {
      job.connections.delete(carried);
      this.#count(job, "connections_open", -1);
    }
  }

  /** Jobs, supervisors and traffic for `GET /metrics`. */
  metrics(): RendezvousMetrics {
    const jobs: RendezvousMetrics["jobs"] = {};
    for (const job of this.#jobs.values()) {
      jobs[job.jobId] = {
        ...job.traffic,
        supervisor_id: job.supervisorId,
        supervisor_connected: job.link !== undefined,
        endpoints: this.#endpoints(job),
      };
    }
    return { supervisors_connected: this.#links.size, jobs, totals: { ...this.#totals } };
  }

  /** Withdraws every job and stops the idle sweep (server shutdown). */
  close(): void {
    clearInterval(this.#sweeper);
    for (const jobId of [...this.#jobs.keys()]) this.withdraw(jobId, "the server is stopping");
  }

  #jobOf(supervisorId: string): ExposedJob | undefined {
    for (const job of this.#jobs.values()) if (job.supervisorId === supervisorId) return job;
    return undefined;
  }

  #exposeOne(job: ExposedJob, service: ExposedService): void {
    const existing = job.services.get(service.port);
    if (existing !== undefined) {
      existing.name = service.name;
      return;
    }
    const listener = this.options.ports.listen();
    if (listener === undefined) {
      throw new RendezvousError(
        "unavailable",
        `Cannot expose port ${service.port} of job "${job.jobId}": no free public port in ${this.options.ports.range}`,
      );
    }
    job.services.set(service.port, { name: service.name, listener });
    this.options.log.info("service exposed", {
      job_id: job.jobId,
      name: service.name,
      port: service.port,
      public_port: listener.addr.port,
    });
    void this.#accept(job.jobId, service.port, listener);
  }

  #unexpose(job: ExposedJob, port: number, listener: Deno.TcpListener): void {
    job.services.delete(port);
    this.options.ports.release(listener);
    const gone = new RendezvousError("not_found", "Cannot connect: the job's service is gone");
    for (const carried of [...job.connections]) if (carried.port === port) carried.cut(gone);
  }

  async #accept(jobId: string, port: number, listener: Deno.TcpListener): Promise<void> {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        void this.carry(jobId, port, tcpUser(conn));
      }
    } catch (error) {
      // Closing the listener ends the loop with BadResource (or Interrupted).
      if (!(error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted)) {
        this.options.log.error("public port failed", { job_id: jobId, error: String(error) });
      }
    }
  }

  #endpoints(job: ExposedJob): ServiceEndpoint[] {
    return [...job.services].map(([port, service]) => ({
      name: service.name,
      port,
      host: this.options.publicHost,
      public_port: service.listener.addr.port,
    }));
  }

  #count(job: ExposedJob, counter: keyof Traffic, amount: number): void {
    job.traffic[counter] += amount;
    this.#totals[counter] += amount;
  }

  #sweepIdle(): void {
    const limit = this.options.idleTimeoutMs;
    const now = performance.now();
    for (const job of this.#jobs.values()) {
      for (const carried of [...job.connections]) {
        if (now - carried.lastActive > limit) {
          carried.cut(
            new RendezvousError("idle", `Cannot keep the connection: idle for ${limit} ms`),
          );
        }
      }
    }
  }
}

/**
 * A user on a public TCP port: a refusal is one line of text (which `ssh -v` and `nc` show),
 * then the connection closes; a cut just closes, since the bytes belong to the protocol.
 */
function tcpUser(conn: Deno.TcpConn): UserSide {
  return {
    stream: conn,
    accepted: () => {},
    refuse: (error) => {
      conn.write(new TextEncoder().encode(`tml-rendezvous: ${error.message}\r\n`))
        .catch(() => {})
        .finally(() => close(conn));
    },
    cut: () => close(conn),
  };
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function supervisorAway(): RendezvousError {
  return new RendezvousError("unavailable", "Cannot connect: the job's supervisor is reconnecting");
}

function newTraffic(): Traffic {
  return {
    connections_open: 0,
    connections_total: 0,
    connections_refused: 0,
    bytes_to_host: 0,
    bytes_from_host: 0,
  };
}
