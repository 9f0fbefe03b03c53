/**
 * SSH into a real VM through the rendezvous proxy, end to end: a switchboard on PostgreSQL, an
 * image store holding the test guest, a `tml rendezvous serve` process, and
 * `tml supervisor qemu --rendezvous` booting the job's VM under software emulation. The guest's
 * own SSH server (dropbear, behind the VM's user-network forward of port 22) takes the key the
 * CLI made at enqueue, which the puppet wrote to /home/tml/.ssh/authorized_keys. One VM.
 */
import { assertEquals } from "../../lib/testing/asserts.ts";
import { startImageStore } from "../image_store/store_harness.ts";
import { pushImage, qemuProcessesOf, startQemuSupervisor } from "../support/qemu_supervisor.ts";
import { registerSupervisor, startSpine, waitForJob } from "../support/spine.ts";
import { testGuest } from "../support/test_guest.ts";
import { SSH_TO_TEST_HOST, startRendezvousSite } from "./testbed.ts";

const BOOT_MS = 120_000;
const TAG = "vm:qemu-ssh";

Deno.test({
  name: "tml job ssh and ssh -p reach a QEMU job's guest through the rendezvous server",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const guest = await testGuest();
    const dir = await Deno.makeTempDir({ prefix: "tml-qemu-ssh-" });
    const cleanup: Array<() => Promise<unknown>> = [];
    try {
      const store = await startImageStore(`${dir}/store`);
      cleanup.push(() => store.stop());
      const spine = await startSpine([
        "--keepalive-interval",
        "500ms",
        "--image-store-url",
        store.url,
      ]);
      cleanup.push(() => spine.stop());
      const site = await startRendezvousSite(spine, { rendezvousArgs: [] });
      cleanup.push(() => site.stop());
      await pushImage(guest, store);
      const registered = await registerSupervisor(spine, "qemu-ssh", [TAG]);
      const supervisor = await startQemuSupervisor({
        switchboard: spine.url,
        imageStore: store.url,
        supervisorId: registered.supervisorId,
        token: registered.token,
        dir,
        // The default services: ssh=22, the guest's own port.
        args: ["--rendezvous", site.rendezvousUrl],
      });
      cleanup.push(() => supervisor.kill());
      await supervisor.waitFor(/connected to the rendezvous server/);

      // Through the CLI, which makes the owner's key and adds it to the job.
      const enqueued = await site.tml(["job", "enqueue", guest.imageId, "--tag-config", TAG]);
      assertEquals(enqueued.code, 0, enqueued.stderr);
      const jobId: string = JSON.parse(enqueued.stdout).job_id;
      await waitForJob(spine, site.owner.token, jobId, (job) => job.state === "ready", BOOT_MS);
      const endpoint = await site.sshEndpoint(jobId);

      await t.step("tml job ssh runs a command in the guest through the websocket", async () => {
        const result = await site.tml([
          "job",
          "ssh",
          "-o",
          "BatchMode=yes",
          jobId,
          "--",
          "echo",
          "ok",
        ]);
        assertEquals(result.stdout, "ok\n", result.stderr);
        assertEquals(result.code, 0);
      });

      await t.step(
        "ssh -p to the job's public port logs in as tml with the job's key",
        async () => {
          const output = await new Deno.Command("ssh", {
            args: [
              ...SSH_TO_TEST_HOST,
              "-i",
              site.ownerKey,
              "-p",
              String(endpoint.port),
              `tml@${endpoint.host}`,
              "echo ok; id -un; stat -c '%U %a' ~/.ssh/authorized_keys",
            ],
            stdin: "null",
          }).output();
          const stderr = new TextDecoder().decode(output.stderr);
          assertEquals(new TextDecoder().decode(output.stdout), "ok\ntml\ntml 600\n", stderr);
        },
      );

      await t.step("after the job terminates its port refuses, and no VM is left", async () => {
        const canceled = await site.tml(["job", "cancel", jobId]);
        assertEquals(canceled.code, 0, canceled.stderr);
        await site.assertEndpointGone(jobId, endpoint.port);
        assertEquals(await qemuProcessesOf(dir), [], "the job's VM outlived it");
      });
    } finally {
      for (const step of cleanup.reverse()) await step().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
