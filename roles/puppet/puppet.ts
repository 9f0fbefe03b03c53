/**
 * `tml puppet`: the agent inside a job's host. It connects to its supervisor, authenticates
 * with the per-job secret, writes the job's files, reports ready, runs the job's workload (if
 * any) and reports its result, keeps a heartbeat, and relays `tml puppet finish|terminate`
 * from a control socket under its root, for workloads that run by themselves.
 */
import { TmlError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { encodeFrame, readFrames } from "../../lib/protocol/framed_json.ts";
import {
  MAX_PUPPET_FRAME_BYTES,
  type PuppetJob,
  PuppetMessage,
  SupervisorToPuppet,
} from "../../lib/protocol/puppet.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol/version.ts";
import { lookupUser, writeJobFiles } from "./job_files.ts";
import { serveControlSocket } from "./control_socket.ts";

export interface PuppetOptions {
  channel: string;
  secret: string;
  root: string;
  authorizedKeys?: string;
  heartbeatMs: number;
}

const log = createLogger("puppet");

export async function runPuppet(options: PuppetOptions): Promise<void> {
  const connection = await connectChannel(options.channel);
  const send = async (message: PuppetMessage) => {
    await connection.write(encodeFrame(message));
  };
  await send({ type: "auth", protocol_version: PROTOCOL_VERSION, secret: options.secret });
  const frames = readFrames(connection.readable, SupervisorToPuppet, {
    maxBytes: MAX_PUPPET_FRAME_BYTES,
    onInvalid: (detail) => log.warn("ignoring an invalid frame", { detail }),
  });
  const first = await frames.next();
  if (first.done || first.value.type !== "auth_ok") {
    const reason = first.done
      ? "the channel closed"
      : first.value.type === "auth_failed"
      ? first.value.message
      : first.value.type;
    throw new TmlError("puppet_auth_failed", `Cannot authenticate to the supervisor: ${reason}`);
  }
  const job = first.value.job;
  await Deno.mkdir(options.root, { recursive: true });
  const tmlUser = Deno.uid() === 0 ? await lookupUser("tml") : undefined;
  await writeJobFiles(job, {
    root: options.root,
    authorizedKeys: options.authorizedKeys ??
      (tmlUser !== undefined
        ? `${tmlUser.home}/.ssh/authorized_keys`
        : `${options.root}/authorized_keys`),
    secretOwner: tmlUser,
  });
  log.info("job files written", {
    job_id: job.job_id,
    parameters: Object.keys(job.parameters).length,
  });

  const heartbeat = setInterval(
    () => void send({ type: "heartbeat" }).catch(() => {}),
    options.heartbeatMs,
  );
  const control = serveControlSocket(`${options.root}/puppet.sock`, (message) => send(message));
  await send({ type: "ready" });
  if (job.workload !== null) void runWorkload(job, options.root, send);

  try {
    for await (const message of frames) {
      if (message.type === "shutdown") break;
    }
  } finally {
    clearInterval(heartbeat);
    control.close();
    connection.close();
  }
}

async function runWorkload(
  job: PuppetJob,
  root: string,
  send: (message: PuppetMessage) => Promise<void>,
): Promise<void> {
  const workdir = `${root}/work`;
  await Deno.mkdir(workdir, { recursive: true });
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", job.workload!],
    cwd: workdir,
    env: {
      TML_JOB_ID: job.job_id,
      TML_PARAMETERS_DIR: `${root}/parameters`,
      TML_PUPPET_ROOT: root,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const relay = async (stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    const sink = name === "stdout" ? Deno.stdout : Deno.stderr;
    for await (const chunk of stream) {
      await sink.write(chunk);
      const data = decoder.decode(chunk, { stream: true });
      for (let offset = 0; offset < data.length; offset += 60_000) {
        await send({
          type: "workload_output",
          stream: name,
          data: data.slice(offset, offset + 60_000),
        }).catch(() => {});
      }
    }
  };
  await Promise.all([relay(child.stdout, "stdout"), relay(child.stderr, "stderr")]);
  const status = await child.status;
  const outcome = status.success ? "success" : "error";
  log.info("workload finished", { job_id: job.job_id, exit_code: status.code });
  await send({
    type: "workload_finished",
    outcome,
    exit_code: status.code,
    message: status.signal !== null ? `killed by ${status.signal}` : `exit code ${status.code}`,
  });
}

interface Channel {
  readable: ReadableStream<Uint8Array>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** Connects to `tcp:HOST:PORT` or `unix:PATH`, retrying for a while (the host may be early). */
async function connectChannel(spec: string): Promise<Channel> {
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      if (spec.startsWith("tcp:")) {
        const rest = spec.slice(4);
        const colon = rest.lastIndexOf(":");
        return await Deno.connect({
          hostname: rest.slice(0, colon),
          port: Number(rest.slice(colon + 1)),
        });
      }
      if (spec.startsWith("unix:")) {
        return await Deno.connect({ transport: "unix", path: spec.slice(5) });
      }
      if (spec.startsWith("file:")) return await openCharacterDevice(spec.slice(5));
    } catch (error) {
      if (Date.now() > deadline) {
        throw new TmlError(
          "puppet_channel",
          `Cannot connect to the supervisor at "${spec}": ${(error as Error).message}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    throw new TmlError(
      "puppet_channel",
      `Invalid channel "${spec}": expected tcp:HOST:PORT, unix:PATH or file:DEVICE`,
    );
  }
}

/** A character device (a virtio-serial port) used as a byte stream. */
async function openCharacterDevice(path: string): Promise<Channel> {
  const file = await Deno.open(path, { read: true, write: true });
  return {
    readable: file.readable,
    write: (bytes) => file.write(bytes),
    close: () => file.close(),
  };
}
