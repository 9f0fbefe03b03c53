/**
 * The rendezvous testbed, all real: a switchboard on PostgreSQL (`spine.ts`), a
 * `tml rendezvous serve` process, `tml supervisor local` processes that dial it through a TCP
 * relay the test can cut, a real sshd per supervisor as its jobs' SSH service, and a user with a
 * scratch HOME whose CLI makes its own SSH key at enqueue.
 *
 * `startRendezvousSite` is the part without supervisors (the rendezvous server, the users and
 * their CLI), for tests that bring their own, such as `tml supervisor qemu` in
 * `qemu_ssh_test.ts`.
 */
import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { type ByteStream, splice } from "../../lib/net/splice.ts";
import { WebSocketBytes } from "../../lib/net/ws_bytes.ts";
import {
  api,
  createUser,
  registerSupervisor,
  type Spine,
  startSpine,
  TEST_IMAGE_ID,
  waitForJob,
} from "../support/spine.ts";
import { freePort, runTml, TmlProcess, type TmlRunResult } from "../support/tml_process.ts";
import { requireProgram } from "../../lib/system_packages.ts";
import { OPENSSL } from "../support/system_programs.ts";
import { type Sshd, startSshd } from "./sshd.ts";

/** ssh options for a test host: no prompts, and its fresh host key is neither checked nor kept. */
export const SSH_TO_TEST_HOST = [
  "-o",
  "BatchMode=yes",
  "-o",
  "UserKnownHostsFile=/dev/null",
  "-o",
  "StrictHostKeyChecking=no",
  "-o",
  "LogLevel=ERROR",
];

/** A TCP relay in front of a port; `cut()` drops every connection through it. */
export interface Relay {
  port: number;
  cut(): void;
  close(): void;
}

export function startRelay(targetPort: number): Relay {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      const target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort }).catch(() => {
        conn.close();
        return undefined;
      });
      if (target === undefined) continue;
      open.add(conn).add(target);
      splice(conn, target).finally(() => open.delete(conn) && open.delete(target));
    }
  })().catch(() => {});
  const cut = () => {
    for (const conn of open) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    open.clear();
  };
  return {
    port: listener.addr.port,
    cut,
    close() {
      cut();
      listener.close();
    },
  };
}

/**
 * A service that sends bytes for as long as a connection reads them (RFC 864's chargen), run
 * by the test for every job's host beside sshd: it shows one stalled reader stalls nothing else.
 */
export function startChargen(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pattern = new Uint8Array(256 * 1024).map((_, i) => 32 + (i % 95));
  (async () => {
    for await (const conn of listener) {
      open.add(conn);
      (async () => {
        while (true) await conn.write(pattern);
      })().catch(() => open.delete(conn));
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    close() {
      listener.close();
      for (const conn of open) conn.close();
    },
  };
}

export interface Host {
  supervisor: TmlProcess;
  supervisorId: string;
  /** The supervisor's own token (it asks the switchboard for grants with it). */
  token: string;
  sshd: Sshd;
  /** The host port of its chargen service (exposed as `chargen`). */
  chargenPort: number;
  relay: Relay;
  tag: string;
}

/** A rendezvous server beside a switchboard, and users whose CLI reaches both. */
export interface RendezvousSite {
  spine: Spine;
  rendezvous: TmlProcess;
  /** `http://127.0.0.1:PORT` of the rendezvous server. */
  rendezvousUrl: string;
  portRange: { first: number; last: number };
  /** The job owner's API token and CLI environment (scratch HOME). */
  owner: { token: string; env: Record<string, string>; home: string };
  /** Another user, who may not reach the owner's jobs. */
  stranger: { token: string };
  /** What a supervisor needs in its environment to trust the server (TLS: `DENO_CERT`). */
  trust: Record<string, string>;
  /** Runs `tml ARGS` as the owner. */
  tml(args: string[]): Promise<TmlRunResult>;
  /** The path of the SSH key tml made for the owner at their first enqueue. */
  ownerKey: string;
  /** Waits until the job's status lists an SSH endpoint; returns it. */
  sshEndpoint(jobId: string): Promise<{ host: string; port: number }>;
  /** A user token for the job, as the owner. */
  userToken(jobId: string, expiresIn?: string): Promise<string>;
  /** Opens the user websocket to a job's port. */
  dial(jobId: string, port: number, token: string): Promise<WebSocketBytes>;
  /**
   * Waits until the job has terminated, asserts that its status lists no endpoint any more and
   * that its public port refuses connections (within 10 s).
   */
  assertEndpointGone(jobId: string, port: number): Promise<void>;
  /** Stops the rendezvous server and removes the users' files (not the spine). */
  stop(): Promise<void>;
}

export interface Testbed extends RendezvousSite {
  hosts: Host[];
  /** Enqueues a long-running job on a host as the owner (CLI, so it adds tml's key). */
  enqueue(host: Host): Promise<string>;
}

export interface RendezvousSiteOptions {
  rendezvousArgs: string[];
  /** Serve TLS (websockets and data port) with a fresh self-signed certificate. */
  tls?: boolean;
}

export interface TestbedOptions extends RendezvousSiteOptions {
  hosts: string[];
}

/** A self-signed certificate for 127.0.0.1; processes trust it through `DENO_CERT`. */
async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const openssl = await requireProgram(OPENSSL);
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const result = await new Deno.Command(openssl, {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!result.success) throw new Error(new TextDecoder().decode(result.stderr));
  return { cert, key };
}

/**
 * Starts a rendezvous server on `spine` (`--port-range` of 20 free ports, listening on
 * 127.0.0.1) and creates the owner and a stranger, each with a token.
 */
export async function startRendezvousSite(
  spine: Spine,
  options: RendezvousSiteOptions,
): Promise<RendezvousSite> {
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const home = await Deno.makeTempDir({ prefix: "tml-rdv-home-" });
    cleanup.push(() => Deno.remove(home, { recursive: true }));
    const tls = options.tls ? await selfSignedCertificate(home) : undefined;
    const trust: Record<string, string> = tls === undefined ? {} : { DENO_CERT: tls.cert };
    const first = freePort();
    const portRange = { first, last: first + 19 };
    const rendezvous = TmlProcess.start([
      "rendezvous",
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--switchboard",
      spine.url,
      "--port-range",
      `${portRange.first}-${portRange.last}`,
      ...(tls === undefined ? [] : ["--tls-cert", tls.cert, "--tls-key", tls.key]),
      ...options.rendezvousArgs,
    ]);
    cleanup.push(async () => void await rendezvous.kill());
    const rendezvousUrl = (await rendezvous.waitFor(/listening on (https?:\/\/\S+)/))[1];

    const owner = await createUser(spine, "owner", ["submit_job", "run_job_on_supervisor:*"]);
    const stranger = await createUser(spine, "stranger", ["submit_job", "run_job_on_supervisor:*"]);
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: `${home}/.config`,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      TML_API_URL: spine.url,
      TML_API_TOKEN: owner.token,
      ...trust,
    };
    const tml = (args: string[]) => runTml(args, { env });
    const site: RendezvousSite = {
      spine,
      rendezvous,
      rendezvousUrl,
      portRange,
      owner: { token: owner.token, env, home },
      stranger: { token: stranger.token },
      trust,
      tml,
      ownerKey: `${home}/.config/tml/ssh/id_ed25519`,
      async sshEndpoint(jobId) {
        const job = await waitForJob(
          spine,
          owner.token,
          jobId,
          (job) => (job.ssh_endpoints as unknown[]).length > 0,
          30_000,
        );
        return (job.ssh_endpoints as Array<{ host: string; port: number }>)[0];
      },
      async userToken(jobId, expiresIn) {
        const response = await api(
          spine,
          owner.token,
          "POST",
          `/jobs/${jobId}/rendezvous-token`,
          expiresIn === undefined ? {} : { expires_in: expiresIn },
        );
        assertEquals(response.status, 201, JSON.stringify(response.body));
        return (response.body as { token: string }).token;
      },
      dial(jobId, port, token) {
        const base = rendezvousUrl.replace(/^http/, "ws");
        return WebSocketBytes.connect(`${base}/v1/jobs/${jobId}/connect?port=${port}`, {
          headers: { authorization: `Bearer ${token}` },
        });
      },
      async assertEndpointGone(jobId, port) {
        const ended = await waitForJob(
          spine,
          owner.token,
          jobId,
          (job) => job.state === "terminated",
          30_000,
        );
        assertEquals(ended.ssh_endpoints, []);
        const deadline = Date.now() + 10_000;
        let refused = false;
        while (!refused && Date.now() < deadline) {
          try {
            (await Deno.connect({ hostname: "127.0.0.1", port })).close();
            await new Promise((resolve) => setTimeout(resolve, 50));
          } catch (error) {
            refused = error instanceof Deno.errors.ConnectionRefused;
          }
        }
        assert(refused, "the public port refuses connections");
      },
      async stop() {
        for (const step of cleanup.reverse()) await step();
      },
    };
    return site;
  } catch (error) {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => {});
    throw error;
  }
}

export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  const spine = await startSpine(["--keepalive-interval", "500ms"]);
  const cleanup: Array<() => Promise<void> | void> = [() => spine.stop()];
  try {
    const site = await startRendezvousSite(spine, options);
    cleanup.push(() => site.stop());
    const chargen = startChargen();
    cleanup.push(() => chargen.close());
    const hosts: Host[] = [];
    for (const name of options.hosts) {
      const sshd = await startSshd(name);
      cleanup.push(() => sshd.stop());
      // TLS passes through the relay untouched: the supervisor still checks the certificate.
      const relay = startRelay(Number(new URL(site.rendezvousUrl).port));
      cleanup.push(() => relay.close());
      const tag = `host:${name}`;
      const registered = await registerSupervisor(spine, `sup-${name}`, [tag]);
      const dir = await Deno.makeTempDir({ prefix: `tml-rdv-sup-${name}-` });
      cleanup.push(() => Deno.remove(dir, { recursive: true }));
      await Deno.writeTextFile(`${dir}/token`, registered.token, { mode: 0o600 });
      const supervisor = TmlProcess.start([
        "supervisor",
        "local",
        "--switchboard",
        spine.url,
        "--id",
        registered.supervisorId,
        "--token-file",
        `${dir}/token`,
        "--state-dir",
        dir,
        "--rendezvous",
        `${new URL(site.rendezvousUrl).protocol}//127.0.0.1:${relay.port}`,
        "--rendezvous-services",
        `ssh=${sshd.port},chargen=${chargen.port}`,
      ], { env: site.trust });
      cleanup.push(async () => void await supervisor.kill());
      hosts.push({
        supervisor,
        supervisorId: registered.supervisorId,
        token: registered.token,
        sshd,
        chargenPort: chargen.port,
        relay,
        tag,
      });
    }
    for (const host of hosts) {
      await host.supervisor.waitFor(/connected to the switchboard/);
      await host.supervisor.waitFor(/connected to the rendezvous server/);
    }

    return {
      ...site,
      hosts,
      async enqueue(host) {
        const result = await site.tml([
          "job",
          "enqueue",
          TEST_IMAGE_ID,
          "--tag-config",
          host.tag,
          "--workload",
          "sleep 600",
        ]);
        assertEquals(result.code, 0, result.stderr);
        // The key tml made for this user at its first enqueue: the job's host accepts it.
        const key = await Deno.readTextFile(`${site.ownerKey}.pub`);
        await host.sshd.authorize([key.trim()]);
        return JSON.parse(result.stdout).job_id;
      },
      async stop() {
        for (const step of cleanup.reverse()) await step();
      },
    };
  } catch (error) {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => {});
    throw error;
  }
}

/** Reads from a stream until `pattern` shows up or it ends; returns all that was read. */
export async function readUntil(
  stream: Pick<ByteStream, "read">,
  pattern: RegExp,
  timeoutMs = 10_000,
): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(text) && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const count = await Promise.race([
      stream.read(buffer).catch(() => null),
      new Promise<"timeout">((
        resolve,
      ) => (timer = setTimeout(() => resolve("timeout"), deadline - Date.now()))),
    ]);
    clearTimeout(timer);
    if (count === null || count === "timeout") break;
    text += decoder.decode(buffer.subarray(0, count), { stream: true });
  }
  return text;
}
