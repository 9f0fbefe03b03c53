/**
 * The rendezvous proxy end to end, with real processes and sockets: a switchboard, a rendezvous
 * server, two `tml supervisor local` each running a job whose host service is a real sshd, and
 * the real `tml job ssh` and `ssh -p`. Each step builds on the jobs the earlier ones started.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../../lib/testing/asserts.ts";
import { Buffer } from "node:buffer";
import { UserCloseCode } from "../../lib/protocol/rendezvous.ts";
import { WebSocketClosedError } from "../../lib/net/ws_bytes.ts";
import { api } from "../support/spine.ts";
import { freePort, TmlProcess } from "../support/tml_process.ts";
import { readUntil, SSH_TO_TEST_HOST, startTestbed, type Testbed } from "./testbed.ts";

const BATCH = ["-o", "BatchMode=yes"];

/** The close a refused user websocket gets. */
async function refusal(testbed: Testbed, jobId: string, port: number, token: string) {
  const error = await assertRejects(() => testbed.dial(jobId, port, token), WebSocketClosedError);
  return error.close;
}

Deno.test({
  name: "rendezvous proxy carries ssh to a job's host, end to end",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const testbed = await startTestbed({
      hosts: ["alpha", "beta"],
      rendezvousArgs: [
        "--max-connections-per-job",
        "4",
        "--idle-timeout",
        "2s",
        "--keepalive-interval",
        "500ms",
        "--supervisor-grace",
        "10s",
      ],
    });
    const [alpha, beta] = testbed.hosts;
    try {
      const jobA = await testbed.enqueue(alpha);
      const endpointA = await testbed.sshEndpoint(jobA);
      const user = alpha.sshd.user;
      /** `tml job ssh JOB -- echo ok` through the websocket path. */
      const sshEcho = (job: string) =>
        testbed.tml(["job", "ssh", "-l", user, ...BATCH, job, "--", "echo", "ok"]);

      await t.step("the job's status lists its SSH endpoint on the rendezvous server", () => {
        assertEquals(endpointA.host, "127.0.0.1");
        assert(
          endpointA.port >= testbed.portRange.first && endpointA.port <= testbed.portRange.last,
        );
      });

      await t.step("tml job ssh runs a command through the websocket path", async () => {
        const result = await testbed.tml([
          "job",
          "ssh",
          "-l",
          user,
          ...BATCH,
          jobA,
          "--",
          "echo",
          "ok",
          "$TML_TEST_HOST",
        ]);
        assertEquals(result.stdout, "ok alpha\n", result.stderr);
        assertEquals(result.code, 0);
      });

      await t.step("ssh -p to the public port works too", async () => {
        const key = testbed.ownerKey;
        const output = await new Deno.Command("ssh", {
          args: [
            ...SSH_TO_TEST_HOST,
            "-i",
            key,
            "-p",
            String(endpointA.port),
            `${user}@${endpointA.host}`,
            "echo ok $TML_TEST_HOST",
          ],
          stdin: "null",
        }).output();
        assertEquals(new TextDecoder().decode(output.stdout), "ok alpha\n");
      });

      const jobB = await testbed.enqueue(beta);
      const endpointB = await testbed.sshEndpoint(jobB);

      await t.step(
        "two jobs at once: each is reached, and a token for one cannot reach the other",
        async () => {
          assert(endpointB.port !== endpointA.port);
          const result = await testbed.tml([
            "job",
            "ssh",
            "-l",
            user,
            ...BATCH,
            jobB,
            "--",
            "echo ok $TML_TEST_HOST",
          ]);
          assertEquals(result.stdout, "ok beta\n", result.stderr);
          const tokenA = await testbed.userToken(jobA);
          const crossed = await refusal(testbed, jobB, beta.sshd.port, tokenA);
          assertEquals(crossed.code, UserCloseCode.forbidden);
          assertStringIncludes(crossed.reason, "the token is for another job");
          // Another user gets no token for the owner's job at all.
          const stranger = await api(
            testbed.spine,
            testbed.stranger.token,
            "POST",
            `/jobs/${jobA}/rendezvous-token`,
            {},
          );
          assertEquals(stranger.status, 404);
          // A supervisor gets grants only for the job it runs: beta cannot expose alpha's job.
          const stolen = await api(testbed.spine, beta.token, "POST", "/rendezvous/grant", {
            job_id: jobA,
          });
          assertEquals(stolen.status, 409);
          assertStringIncludes(JSON.stringify(stolen.body), "is not running it");
          const keys = await api(testbed.spine, "", "GET", "/rendezvous/keys");
          assertEquals((keys.body as { keys: unknown[] }).keys.length, 1);
          const viaCli = await testbed.tml(["rendezvous", "connect", jobB, "22"]);
          assertEquals(viaCli.code, 1);
          assertStringIncludes(
            viaCli.stderr,
            `Cannot connect to port 22 of job "${jobB}": the job exposes no port 22 here`,
          );
        },
      );

      await t.step(
        "each connection has its own flow control: a stalled one stalls no other",
        async () => {
          const created = await api(
            testbed.spine,
            testbed.owner.token,
            "POST",
            `/jobs/${jobA}/rendezvous-token`,
            {},
          );
          const { token, endpoints } = created.body as {
            token: string;
            endpoints: Array<{ name: string; public_port: number }>;
          };
          const chargenPort = endpoints.find((e) => e.name === "chargen")!.public_port;
          // Two readers that read nothing at all, one on each path...
          const stalledWs = await testbed.dial(jobA, alpha.chargenPort, token);
          const stalledTcp = await Deno.connect({ hostname: "127.0.0.1", port: chargenPort });
          await new Promise((resolve) => setTimeout(resolve, 300));
          // ...while another reads 64 MiB through the websocket and 64 MiB through the port.
          const moving = await testbed.dial(jobA, alpha.chargenPort, token);
          let got = 0;
          while (got < 64 * 1024 * 1024) got += (await moving.readChunk())!.length;
          const tcp = await Deno.connect({ hostname: "127.0.0.1", port: chargenPort });
          const buffer = new Uint8Array(1024 * 1024);
          for (got = 0; got < 64 * 1024 * 1024;) got += (await tcp.read(buffer))!;
          // The stalled ones were held back, not dropped: they still deliver.
          assert((await stalledWs.readChunk())!.length > 0);
          assert((await stalledTcp.read(buffer))! > 0);
          for (const stream of [moving, stalledWs]) stream.close();
          for (const conn of [tcp, stalledTcp]) conn.close();
        },
      );

      await t.step("tml job forward carries a local port to a port of the job's host", async () => {
        const local = freePort();
        const forward = TmlProcess.start(["job", "forward", jobA, `${local}:${alpha.sshd.port}`], {
          env: testbed.owner.env,
        });
        try {
          await forward.waitFor(/Forwarding 127\.0\.0\.1:\d+ to port/);
          const output = await new Deno.Command("ssh", {
            args: [
              ...SSH_TO_TEST_HOST,
              "-i",
              testbed.ownerKey,
              "-p",
              String(local),
              `${user}@127.0.0.1`,
              "echo forwarded $TML_TEST_HOST",
            ],
            stdin: "null",
          }).output();
          assertEquals(new TextDecoder().decode(output.stdout), "forwarded alpha\n");
        } finally {
          await forward.kill();
        }
      });

      await t.step("bad input is refused clearly and the others keep being served", async () => {
        const port = alpha.sshd.port;
        const valid = await testbed.userToken(jobA);
        const malformed = await refusal(testbed, jobA, port, "not-a-token");
        assertEquals(malformed, {
          code: UserCloseCode.unauthorized,
          reason: "Cannot connect: the token is malformed",
        });
        const [body, signature] = valid.split(".");
        const forged = `${body}.${
          Buffer.from(signature, "base64url").reverse().toString("base64url")
        }`;
        assertEquals(
          (await refusal(testbed, jobA, port, forged)).reason,
          "Cannot connect: the token has a bad signature",
        );
        const shortLived = await testbed.userToken(jobA, "1s");
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        const expired = await refusal(testbed, jobA, port, shortLived);
        assertEquals(expired.code, UserCloseCode.unauthorized);
        assertMatch(expired.reason, /^Cannot connect: the token expired at \d{4}-/);

        // Garbage on a user websocket: closed with a reason.
        const stream = await testbed.dial(jobA, port, valid);
        assertMatch(await readUntil(stream, /SSH-2\.0-/), /^SSH-2\.0-OpenSSH/);
        const socket = new WebSocket(
          `${testbed.rendezvousUrl.replace(/^http/, "ws")}/v1/jobs/${jobA}/connect?port=${port}`,
          { headers: { authorization: `Bearer ${valid}` } },
        );
        const garbageClose = await new Promise<CloseEvent>((resolve) => {
          socket.onopen = () => socket.send("garbage");
          socket.onclose = resolve;
        });
        assertEquals(garbageClose.code, 1008);
        assertEquals(garbageClose.reason, "Cannot read stream control: not JSON");
        stream.close();

        // Garbage and bad grants on the control websocket.
        const control = async (send: string) => {
          const socket = new WebSocket(
            `${testbed.rendezvousUrl.replace(/^http/, "ws")}/v1/supervisors/connect`,
          );
          const messages: string[] = [];
          socket.onmessage = (event) => messages.push(event.data);
          const closed = await new Promise<CloseEvent>((resolve) => {
            socket.onopen = () => socket.send(send);
            socket.onclose = resolve;
          });
          return { code: closed.code, reason: closed.reason, messages };
        };
        assertEquals(await control("garbage"), {
          code: 1008,
          reason: "Cannot read message: not JSON",
          messages: [],
        });
        const hello = (grant: string) =>
          JSON.stringify({ type: "hello", protocol_version: 3, tml_version: "x", grant });
        const userAsGrant = await control(hello(valid));
        assertEquals(userAsGrant.code, 4003);
        assertEquals(
          userAsGrant.reason,
          "Cannot accept supervisor: Cannot verify grant: it is a user token",
        );
        const old = await control(
          JSON.stringify({ type: "hello", protocol_version: 2, tml_version: "x", grant: valid }),
        );
        assertStringIncludes(old.reason, "protocol version 2");

        // A flood beyond the per-job limit: the extra connections are refused with a line.
        const flood: Deno.TcpConn[] = [];
        for (let i = 0; i < 4; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: endpointA.port });
          flood.push(conn);
          assertMatch(await readUntil(conn, /\n/), /^SSH-2\.0-/);
        }
        for (let i = 0; i < 2; i++) {
          const extra = await Deno.connect({ hostname: "127.0.0.1", port: endpointA.port });
          assertEquals(
            await readUntil(extra, /\n/),
            "tml-rendezvous: Cannot connect: the job has 4 connections, the most allowed\r\n",
          );
          extra.close();
        }
        const overWs = await refusal(testbed, jobA, port, valid);
        assertEquals(overWs.code, UserCloseCode.tooManyConnections);
        // Meanwhile the other job is served.
        const other = await sshEcho(jobB);
        assertEquals(other.stdout, "ok\n", other.stderr);
        // The flood sits idle: the idle timeout (2 s) cuts it.
        for (const conn of flood) assertEquals(await readUntil(conn, /never/, 6_000), "");
        for (const conn of flood) conn.close();
        const again = await sshEcho(jobA);
        assertEquals(again.stdout, "ok\n", again.stderr);

        const metrics = await (await fetch(`${testbed.rendezvousUrl}/metrics`)).json();
        const traffic = metrics.jobs[jobA];
        assertEquals(traffic.connections_open, 0);
        assert(traffic.connections_refused >= 3, JSON.stringify(traffic));
        assert(traffic.bytes_to_host > 0 && traffic.bytes_from_host > 0, JSON.stringify(traffic));
        assertEquals(metrics.supervisors_connected, 2);
      });

      await t.step(
        "a supervisor whose websocket is killed reconnects and its service comes back",
        async () => {
          const connections = () =>
            alpha.supervisor.stderr.match(/connected to the rendezvous server/g)?.length ?? 0;
          const before = connections();
          alpha.relay.cut();
          await alpha.supervisor.waitFor(/disconnected from the rendezvous server/);
          const deadline = Date.now() + 15_000;
          while (connections() <= before && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          assert(connections() > before, "the supervisor reconnected");
          const result = await sshEcho(jobA);
          assertEquals(result.stdout, "ok\n", result.stderr);
          assertEquals(await testbed.sshEndpoint(jobA), endpointA);
        },
      );

      await t.step("after a job terminates its ports refuse connections", async () => {
        const token = await testbed.userToken(jobA);
        const canceled = await testbed.tml(["job", "cancel", jobA]);
        assertEquals(canceled.code, 0, canceled.stderr);
        await testbed.assertEndpointGone(jobA, endpointA.port);
        const gone = await refusal(testbed, jobA, alpha.sshd.port, token);
        assertEquals(gone.code, UserCloseCode.notFound);
        const late = await api(
          testbed.spine,
          testbed.owner.token,
          "POST",
          `/jobs/${jobA}/rendezvous-token`,
          {},
        );
        assertEquals(late.status, 409);
        // The other job is untouched.
        const other = await sshEcho(jobB);
        assertEquals(other.stdout, "ok\n", other.stderr);
      });
    } finally {
      await testbed.stop();
    }
  },
});
