import { assert, assertEquals, assertRejects } from "../testing/asserts.ts";
import { ClientError } from "./errors.ts";
import { SwitchboardClient } from "./switchboard_client.ts";
import { closedPort, jobView, json, startTestServer } from "./test_server.ts";

const TOKEN = "c2VjcmV0LXRva2Vu";

Deno.test("SwitchboardClient sends the bearer token and parses the answer with the schema", async () => {
  const server = startTestServer(() => json(jobView({ state: "ready" })));
  try {
    const client = new SwitchboardClient(`${server.url}/`, TOKEN);
    const job = await client.getJob("a b");
    assertEquals(job.state, "ready");
    const request = server.requests[0];
    assertEquals(request.url.pathname, "/api/v1/jobs/a%20b");
    assertEquals(request.headers.get("authorization"), `Bearer ${TOKEN}`);
  } finally {
    await server.close();
  }
});

Deno.test("SwitchboardClient.enqueueJob() posts the body as JSON", async () => {
  const server = startTestServer(() => json(jobView(), 201));
  try {
    await new SwitchboardClient(server.url, TOKEN).enqueueJob({
      image_id: "a".repeat(64),
      timeout: "30m",
    });
    assertEquals(server.requests[0].method, "POST");
    assertEquals(server.requests[0].headers.get("content-type"), "application/json");
    assertEquals(JSON.parse(server.requests[0].body), { image_id: "a".repeat(64), timeout: "30m" });
  } finally {
    await server.close();
  }
});

Deno.test("SwitchboardClient.listJobs() puts only the given filters in the query", async () => {
  const server = startTestServer(() => json({ jobs: [], next_cursor: null }));
  try {
    const client = new SwitchboardClient(server.url, TOKEN);
    await client.listJobs();
    await client.listJobs({ state: "active", limit: 5, cursor: undefined });
    assertEquals(server.requests[0].url.search, "");
    assertEquals(server.requests[1].url.search, "?state=active&limit=5");
  } finally {
    await server.close();
  }
});

Deno.test("SwitchboardClient maps an error body to a ClientError with status, code and field", async () => {
  const server = startTestServer(() =>
    json({
      error: { code: "invalid_input", message: "Invalid tag_config: x", field: "tag_config" },
    }, 400)
  );
  try {
    const error = await assertRejects(
      () => new SwitchboardClient(server.url, TOKEN).enqueueJob({ image_id: "a".repeat(64) }),
      ClientError,
    );
    assertEquals(error.status, 400);
    assertEquals(error.code, "invalid_input");
    assertEquals(error.field, "tag_config");
    assertEquals(error.message, "Invalid tag_config: x");
    assertEquals(error.transient, false);
  } finally {
    await server.close();
  }
});

Deno.test("SwitchboardClient names the URL for an error answer that is not the API's", async () => {
  const server = startTestServer(() => new Response("<html>bad gateway</html>", { status: 502 }));
  try {
    const error = await assertRejects(
      () => new SwitchboardClient(server.url, TOKEN).listSupervisors(),
      ClientError,
    );
    assertEquals(error.status, 502);
    assert(error.transient);
    assert(error.message.includes(`${server.url}/api/v1/supervisors`), error.message);
    assert(!error.message.includes(TOKEN));
  } finally {
    await server.close();
  }
});

Deno.test("SwitchboardClient refuses a 200 answer that does not match the protocol", async () => {
  const server = startTestServer((_request, index) =>
    index === 0 ? json({ ...jobView(), state: "exploded" }) : new Response("not json")
  );
  try {
    const client = new SwitchboardClient(server.url, TOKEN);
    const wrongShape = await assertRejects(() => client.getJob("j"), ClientError, "state");
    assertEquals(wrongShape.code, "invalid_response");
    await assertRejects(() => client.getJob("j"), ClientError, "not JSON");
  } finally {
    await server.close();
  }
});

Deno.test("SwitchboardClient reports an unreachable switchboard with its URL, as transient", async () => {
  const url = `http://127.0.0.1:${closedPort()}`;
  const error = await assertRejects(
    () => new SwitchboardClient(url, TOKEN).whoami(),
    ClientError,
    `Cannot reach the switchboard at "${url}/api/v1/whoami"`,
  );
  assertEquals(error.status, 0);
  assertEquals(error.code, "network_error");
  assert(error.transient);
  assert(!error.message.includes(TOKEN));
});

Deno.test("SwitchboardClient gives up after its timeout", async () => {
  let release = () => {};
  const server = startTestServer(async () => {
    await new Promise<void>((resolve) => (release = resolve));
    return json({ tokens: [] });
  });
  try {
    const error = await assertRejects(
      () => new SwitchboardClient(server.url, TOKEN, { timeoutMs: 100 }).listTokens(),
      ClientError,
      "no answer in time",
    );
    assertEquals(error.code, "timeout");
    assert(error.transient);
  } finally {
    release();
    await server.close();
  }
});

Deno.test("SwitchboardClient.waitForJob() asks for the wait in milliseconds", async () => {
  const server = startTestServer(() => json(jobView()));
  try {
    await new SwitchboardClient(server.url, TOKEN).waitForJob("j", 1500);
    assertEquals(server.requests[0].url.searchParams.get("timeout"), "1500ms");
  } finally {
    await server.close();
  }
});
