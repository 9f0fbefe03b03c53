/**
 * Finds the puppet's channel to its supervisor and its per-job secret. Each comes from the
 * first source that has it: a flag, then a `TML_PUPPET_*` environment variable, then what a VM's
 * supervisor leaves in the guest (a virtio-serial port named `PUPPET_VIRTIO_PORT_NAME`, a QEMU
 * `fw_cfg` file named `PUPPET_FW_CFG_SECRET`). Netbooted hosts will add their sources here.
 */
import type { ByteStream } from "../../lib/protocol/framed_json.ts";
import { PUPPET_FW_CFG_SECRET, PUPPET_VIRTIO_PORT_NAME } from "../../lib/protocol/puppet.ts";
import { PuppetError } from "./errors.ts";

export type ChannelSpec =
  | { kind: "tcp"; hostname: string; port: number }
  | { kind: "unix"; path: string }
  | { kind: "file"; path: string };

const SPEC_HELP = "expected tcp:HOST:PORT, unix:PATH or file:DEVICE";

/** Parses `tcp:HOST:PORT`, `unix:PATH` or `file:DEVICE`; `source` names where it came from. */
export function parseChannelSpec(text: string, source: string): ChannelSpec {
  const colon = text.indexOf(":");
  const kind = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (colon > 0 && rest !== "") {
    if (kind === "unix" || kind === "file") return { kind, path: rest };
    if (kind === "tcp") {
      const portAt = rest.lastIndexOf(":");
      const hostname = rest.slice(0, portAt).replace(/^\[(.*)\]$/, "$1");
      const port = Number(rest.slice(portAt + 1));
      if (portAt > 0 && Number.isInteger(port) && port > 0 && port < 65536) {
        return { kind, hostname, port };
      }
    }
  }
  throw new PuppetError("invalid_channel", `Invalid channel "${text}": ${SPEC_HELP} (${source})`, {
    field: "channel",
  });
}

export function formatChannelSpec(spec: ChannelSpec): string {
  return spec.kind === "tcp" ? `tcp:${spec.hostname}:${spec.port}` : `${spec.kind}:${spec.path}`;
}

export interface LocateOptions {
  /** `--channel` / `--secret-file`, when given. */
  flag?: string;
  env?: Record<string, string | undefined>;
  /** Root of the filesystem holding `/sys` (tests point it at a directory). */
  sysRoot?: string;
}

export async function locateChannel(options: LocateOptions): Promise<ChannelSpec> {
  if (options.flag !== undefined) return parseChannelSpec(options.flag, "--channel");
  const fromEnv = (options.env ?? Deno.env.toObject()).TML_PUPPET_CHANNEL;
  if (fromEnv !== undefined && fromEnv !== "") {
    return parseChannelSpec(fromEnv, "TML_PUPPET_CHANNEL");
  }
  const portsDir = `${options.sysRoot ?? ""}/sys/class/virtio-ports`;
  try {
    for await (const port of Deno.readDir(portsDir)) {
      const name = await Deno.readTextFile(`${portsDir}/${port.name}/name`).catch(() => "");
      if (name.trim() === PUPPET_VIRTIO_PORT_NAME) {
        return { kind: "file", path: `${options.sysRoot ?? ""}/dev/${port.name}` };
      }
    }
  } catch {
    // No virtio-serial ports: not a VM, or not one a supervisor set up.
  }
  throw new PuppetError(
    "missing_channel",
    `Cannot find the supervisor channel: give --channel (${SPEC_HELP}) or TML_PUPPET_CHANNEL; ` +
      `no virtio-serial port is named "${PUPPET_VIRTIO_PORT_NAME}"`,
    { field: "channel" },
  );
}

export async function locateSecret(options: LocateOptions): Promise<string> {
  const read = async (path: string, field: string) => {
    try {
      return (await Deno.readTextFile(path)).trim();
    } catch (error) {
      throw new PuppetError(
        "missing_secret",
        `Cannot read the per-job secret from "${path}": ${(error as Error).message}`,
        { field, cause: error },
      );
    }
  };
  let secret: string | undefined;
  if (options.flag !== undefined) secret = await read(options.flag, "secret-file");
  else secret = (options.env ?? Deno.env.toObject()).TML_PUPPET_SECRET?.trim();
  if (secret === undefined || secret === "") {
    const fwCfg = `${options.sysRoot ?? ""}/sys/firmware/qemu_fw_cfg/by_name/` +
      `${PUPPET_FW_CFG_SECRET}/raw`;
    secret = await Deno.readTextFile(fwCfg).then((text) => text.trim()).catch(() => undefined);
  }
  if (secret === undefined || secret === "") {
    throw new PuppetError(
      "missing_secret",
      "Cannot find the per-job secret: give --secret-file or TML_PUPPET_SECRET; " +
        `no fw_cfg file "${PUPPET_FW_CFG_SECRET}"`,
      { field: "secret-file" },
    );
  }
  return secret;
}

/** Opens the channel once; the caller retries. */
export async function openChannel(spec: ChannelSpec): Promise<ByteStream> {
  switch (spec.kind) {
    case "tcp":
      return await Deno.connect({ hostname: spec.hostname, port: spec.port });
    case "unix":
      return await Deno.connect({ transport: "unix", path: spec.path });
    case "file": {
      // A virtio-serial port: a character device read and written like a stream.
      const file = await Deno.open(spec.path, { read: true, write: true });
      return {
        readable: file.readable,
        write: (bytes) => file.write(bytes),
        close: () => file.close(),
      };
    }
  }
}
