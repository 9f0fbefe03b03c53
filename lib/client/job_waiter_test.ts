import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import { ClientError } from "./errors.ts";
import { waitForTermination } from "./job_waiter.ts";
import { SwitchboardClient } from "./switchboard_client.ts";
import { closedPort, jobView, json, startTestServer, type TestServer } from "./test_server.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";

function terminated(
  jobId: string,
  exitStatus: "workload_finished_error" | "workload_finished_success" | "supervisor_dropped_job",
  restartedAs: string | null = null,
) {
  return jobView({
    job_id: jobId,
    state: "terminated",
    exit_status: exitStatus,
    restarted_as: restartedAs,
  });
}

Deno.test("waitForTermination() rides out a switchboard that is down, then restarts", async () => {
  const port = closedPort();
  let server: TestServer | undefined;
  const delays: number[] = [];
  const retried: string[] = [];
  try {
    const client = new SwitchboardClient(`http://127.0.0.1:${port}`, "t");
    const result = await waitForTermination(client, A, {
      backoffMs: 5,
      sleep: (ms) => {
        delays.push(ms);
        // The switchboard comes back after the second failure; its first answer is a poll
        // that ended without the job terminating.
        if (delays.length === 2) {
          server = startTestServer(
            (_request, index) =>
              json(
                index === 0
                  ? jobView({ job_id: A, state: "ready" })
                  : terminated(A, "workload_finished_error"),
              ),
            port,
          );
        }
        return Promise.resolve();
      },
      onRetry: (error) => retried.push(error.code),
    });
    assertEquals(result.timedOut, false);
    assertEquals(result.job.exit_status, "workload_finished_error");
    assertEquals(delays, [5, 10]);
    assertEquals(retried, ["network_error", "network_error"]);
    assertEquals(server!.requests.length, 2);
    assert(server!.requests.every((request) => request.url.pathname === `/api/v1/jobs/${A}/wait`));
  } finally {
    await server?.close();
  }
});

Deno.test("waitForTermination() retries 503 answers and resets its backoff after an answer", async () => {
  const answers = [503, 503, 200, 503, 200];
  const server = startTestServer((_request, index) =>
    answers[index] === 503
      ? json({ error: { code: "unavailable", message: "Cannot serve: starting" } }, 503)
      : index === 4
      ? json(terminated(A, "workload_finished_success"))
      : json(jobView({ job_id: A }))
  );
  const delays: number[] = [];
  try {
    const result = await waitForTermination(new SwitchboardClient(server.url, "t"), A, {
      backoffMs: 1,
      sleep: (ms) => (delays.push(ms), Promise.resolve()),
    });
    assertEquals(result.job.exit_status, "workload_finished_success");
    assertEquals(delays, [1, 2, 1]);
  } finally {
    await server.close();
  }
});

Deno.test("waitForTermination() fails at once on an answer that retrying cannot change", async () => {
  const server = startTestServer(() =>
    json({ error: { code: "not_found", message: `Cannot find job "${A}"` } }, 404)
  );
  try {
    const error = await assertRejects(
      () =>
        waitForTermination(new SwitchboardClient(server.url, "t"), A, {
          sleep: () => Promise.reject(new Error("slept")),
        }),
      ClientError,
    );
    assertEquals(error.status, 404);
    assertEquals(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

Deno.test("waitForTermination() follows a restarted job to its successor", async () => {
  const server = startTestServer((request) =>
    request.url.pathname.includes(A)
      ? json(terminated(A, "supervisor_dropped_job", B))
      : json(terminated(B, "workload_finished_success"))
  );
  try {
    const client = new SwitchboardClient(server.url, "t");
    const restarts: string[] = [];
    const followed = await waitForTermination(client, A, {
      onRestart: (from, to) => restarts.push(`${from.job_id}->${to}`),
    });
    assertEquals(followed.job.job_id, B);
    assertEquals(followed.job.exit_status, "workload_finished_success");
    assertEquals(restarts, [`${A}->${B}`]);
    const notFollowed = await waitForTermination(client, A, { followRestarts: false });
    assertEquals(notFollowed.job.exit_status, "supervisor_dropped_job");
  } finally {
    await server.close();
  }
});

Deno.test("waitForTermination() returns the last view when its timeout passes", async () => {
  // Like the switchboard: a wait answers with the current view once the asked time has passed.
  const server = startTestServer(async (request) => {
    const ms = Number(request.url.searchParams.get("timeout")!.replace("ms", ""));
    await new Promise((resolve) => setTimeout(resolve, ms));
    return json(jobView({ job_id: A, state: "ready" }));
  });
  try {
    const started = Date.now();
    const result = await waitForTermination(new SwitchboardClient(server.url, "t"), A, {
      timeoutMs: 60,
      pollMs: 25,
    });
    assertEquals(result.timedOut, true);
    assertEquals(result.job.state, "ready");
    assert(Date.now() - started >= 60);
    assert(server.requests.length >= 2, "polls in pieces no longer than pollMs");
  } finally {
    await server.close();
  }
});
