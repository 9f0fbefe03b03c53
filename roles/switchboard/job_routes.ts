/**
 * `/api/v1/jobs`: enqueue, read, list, history, wait and cancel. A user sees and cancels their
 * own jobs; `read_job_status:<id>`, `stop_job:<id>`, `list_jobs` and `admin` widen that. A job
 * the caller may not see answers 404, so job ids of others are not confirmed.
 */
import { Hono } from "hono";
import { grants, hasPermission, type Principal } from "../../lib/accounts/permissions.ts";
import {
  EnqueueJobRequest,
  JobLogsQuery,
  ListJobsQuery,
  type SshEndpoint,
  WaitJobQuery,
} from "../../lib/protocol/api.ts";
import { parseTagFilter, TagFilterSyntaxError } from "../../lib/tags/mod.ts";
import { authenticate, requirePermission } from "./auth.ts";
import type { AppEnv, SwitchboardDeps } from "./context.ts";
import type { Coordinator } from "./coordinator.ts";
import { ApiError, notFound } from "./http_errors.ts";
import type { ImageChecker } from "./image_check.ts";
import { type JobRow, toJobView } from "./job_row.ts";
import { readJsonBody, readPathUuid, readQuery } from "./request_input.ts";

/** How long a follower waits for output before checking whether the job has ended. */
const FOLLOW_POLL_MS = 15_000;
const MAX_WAIT_MS = 120_000;

export function jobRoutes(
  deps: SwitchboardDeps,
  coordinator: Coordinator,
  images: ImageChecker,
  /** Where a job's SSH services are reached (the rendezvous proxy), for its status. */
  sshEndpointsOf: (job: JobRow) => SshEndpoint[] = () => [],
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", authenticate(deps));

  app.post("/", async (c) => {
    const principal = requirePermission(c, "submit_job");
    const request = await readJsonBody(c, EnqueueJobRequest, deps.config.max_body_bytes);
    try {
      parseTagFilter(request.tag_config);
    } catch (error) {
      if (error instanceof TagFilterSyntaxError) {
        throw new ApiError(400, "invalid_tag_filter", error.message, { field: "tag_config" });
      }
      throw error;
    }
    await images.requireImage(request.image_id);
    const job = await coordinator.enqueue({
      jobId: crypto.randomUUID(),
      ownerId: principal.userId,
      imageId: request.image_id,
      tagConfig: request.tag_config,
      parameters: request.parameters,
      sshKeys: request.ssh_keys,
      workload: request.workload,
      restartCount: request.restart_count,
      timeoutMs: request.timeout ?? deps.config.default_job_timeout,
      queueTimeoutMs: request.queue_timeout ?? deps.config.default_queue_timeout,
      runPermissions: principal.permissions.filter((permission) =>
        permission === "admin" || permission.startsWith("run_job_on_supervisor:")
      ),
    });
    deps.log.info("job enqueued", { job_id: job.job_id, owner_id: job.owner_id, state: job.state });
    return c.json(toJobView(job), 201);
  });

  app.get("/", async (c) => {
    const principal = c.get("principal");
    const query = readQuery(c, ListJobsQuery);
    const beforeSeq = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const jobs = await coordinator.store.list({
      ownerId: hasPermission(principal, "list_jobs") ? undefined : principal.userId,
      state: query.state,
      beforeSeq,
      limit: query.limit,
    });
    const last = jobs.at(-1);
    return c.json({
      jobs: jobs.map((job) => toJobView(job, sshEndpointsOf(job))),
      next_cursor: jobs.length === query.limit && last !== undefined ? String(last.seq) : null,
    });
  });

  app.get("/:id", async (c) => {
    const job = await readableJob(c.get("principal"), readPathUuid(c, "id"), coordinator);
    return c.json(toJobView(job, sshEndpointsOf(job)));
  });

  app.get("/:id/history", async (c) => {
    const job = await readableJob(c.get("principal"), readPathUuid(c, "id"), coordinator);
    return c.json({ job_id: job.job_id, events: await coordinator.store.history(job.job_id) });
  });

  app.get("/:id/wait", async (c) => {
    const job = await readableJob(c.get("principal"), readPathUuid(c, "id"), coordinator);
    const { timeout } = readQuery(c, WaitJobQuery);
    if (job.state === "terminated") return c.json(toJobView(job));
    const ended = await coordinator.waitForTermination(job.job_id, Math.min(timeout, MAX_WAIT_MS));
    return c.json(toJobView(ended ?? (await coordinator.store.get(job.job_id))!));
  });

  app.get("/:id/logs", async (c) => {
    const job = await readableJob(c.get("principal"), readPathUuid(c, "id"), coordinator);
    const { offset, follow } = readQuery(c, JobLogsQuery);
    const headers = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };
    if (!follow) {
      const { data, next } = await coordinator.console.read(job.job_id, offset);
      return new Response(data, {
        headers: {
          ...headers,
          "x-tml-log-next-offset": String(next),
          "x-tml-job-state": job.state,
        },
      });
    }
    // Follow: stream what is stored, then each new chunk, until the job has terminated and its
    // console is complete. A client that loses the connection resumes with the bytes it counted.
    let position = offset;
    let closed = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        while (!closed) {
          const { data, next } = await coordinator.console.read(job.job_id, position);
          if (data.length > 0) {
            position = next;
            controller.enqueue(data);
            return;
          }
          const current = await coordinator.store.get(job.job_id);
          if (current === undefined || current.state === "terminated") {
            // finish() flushes before waking us; one more read catches its last bytes.
            const rest = await coordinator.console.read(job.job_id, position);
            if (rest.data.length > 0) controller.enqueue(rest.data);
            controller.close();
            return;
          }
          await coordinator.console.waitForMore(job.job_id, FOLLOW_POLL_MS);
        }
      },
      cancel() {
        closed = true;
      },
    });
    return new Response(body, { headers: { ...headers, "x-tml-log-offset": String(offset) } });
  });

  app.post("/:id/cancel", async (c) => {
    const principal = c.get("principal");
    const job = await readableJob(principal, readPathUuid(c, "id"), coordinator);
    if (job.owner_id !== principal.userId && !hasPermission(principal, `stop_job:${job.job_id}`)) {
      throw new ApiError(
        403,
        "forbidden",
        `Cannot cancel job "${job.job_id}": missing permission "stop_job:${job.job_id}"`,
      );
    }
    if (job.state === "terminated") {
      throw new ApiError(
        409,
        "job_terminated",
        `Cannot cancel job "${job.job_id}": it is already terminated`,
      );
    }
    const canceled = await coordinator.cancel(job.job_id);
    deps.log.info("job cancel requested", { job_id: job.job_id, by: principal.userId });
    return c.json(toJobView(canceled ?? job));
  });

  return app;
}

async function readableJob(
  principal: Principal,
  jobId: string,
  coordinator: Coordinator,
): Promise<JobRow> {
  const job = await coordinator.store.get(jobId);
  if (
    job === undefined ||
    (job.owner_id !== principal.userId &&
      !grants(principal.permissions, `read_job_status:${jobId}`) &&
      !grants(principal.permissions, "list_jobs"))
  ) {
    throw notFound(`Cannot find job "${jobId}"`);
  }
  return job;
}

function decodeCursor(cursor: string): number {
  const seq = Number(cursor);
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new ApiError(
      400,
      "invalid_request",
      `Invalid query string: cursor: expected a cursor from a previous page`,
      {
        field: "cursor",
      },
    );
  }
  return seq;
}
