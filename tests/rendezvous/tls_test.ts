/**
 * The rendezvous server with TLS: users' websockets are `wss://`, supervisors dial it over TLS
 * and open their data connections with TLS too, each checking the server's certificate (here a
 * self-signed one the processes trust through `DENO_CERT`). Public ports stay plain TCP.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { runTml } from "../support/tml_process.ts";
import { startTestbed } from "./testbed.ts";

Deno.test({
  name: "rendezvous proxy over TLS: tml job ssh through wss and a TLS data connection",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const testbed = await startTestbed({ hosts: ["gamma"], rendezvousArgs: [], tls: true });
    try {
      const [gamma] = testbed.hosts;
      const jobId = await testbed.enqueue(gamma);
      await testbed.sshEndpoint(jobId);
      assertStringIncludes(testbed.rendezvousUrl, "https://");
      const result = await testbed.tml([
        "job",
        "ssh",
        "-l",
        gamma.sshd.user,
        "-o",
        "BatchMode=yes",
        jobId,
        "--",
        "echo ok $TML_TEST_HOST",
      ]);
      assertEquals(result.stdout, "ok gamma\n", result.stderr);
      // A client that does not trust the certificate refuses the server.
      const { DENO_CERT: _, ...untrusting } = testbed.owner.env;
      const refused = await runTml(["rendezvous", "connect", jobId, String(gamma.sshd.port)], {
        env: untrusting,
      });
      assertEquals(refused.code, 1);
      assertMatch(
        refused.stderr,
        /Cannot connect to port \d+ of job .*(certificate|UnknownIssuer)/i,
      );
    } finally {
      await testbed.stop();
    }
  },
});
