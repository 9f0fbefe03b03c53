/**
 * A minimal QMP client (QEMU's JSON machine protocol) on a unix socket: connect (retrying,
 * since QEMU creates the socket some tens of ms after it starts), negotiate capabilities, run
 * commands one at a time. Events QEMU sends in between are skipped.
 */
import { z } from "zod";
import { TmlError } from "../../lib/errors.ts";

const QmpReply = z.union([
  z.object({ QMP: z.unknown() }),
  z.object({ return: z.unknown() }),
  z.object({ error: z.object({ class: z.string(), desc: z.string() }) }),
  z.object({ event: z.string() }),
]);
type QmpReply = z.infer<typeof QmpReply>;

export class QmpError extends TmlError {
  constructor(message: string, cause?: unknown) {
    super("qmp_error", message, { cause });
  }
}

export class QmpClient {
  readonly #connection: Deno.UnixConn;
  readonly #lines: AsyncIterator<string>;

  private constructor(connection: Deno.UnixConn) {
    this.#connection = connection;
    this.#lines = connection.readable
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines())[Symbol.asyncIterator]();
  }

  /** Connects to `path`, retrying until `timeoutMs`, and leaves capabilities negotiation done. */
  static async connect(path: string, timeoutMs = 5_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let connection: Deno.UnixConn | undefined;
    while (connection === undefined) {
      try {
        connection = await Deno.connect({ transport: "unix", path });
      } catch (error) {
        if (Date.now() > deadline) {
          throw new QmpError(`Cannot connect to QMP at "${path}": ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const client = new QmpClient(connection);
    try {
      const greeting = await client.#next();
      if (!("QMP" in greeting)) throw new QmpError(`Cannot use QMP at "${path}": no greeting`);
      await client.execute("qmp_capabilities");
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** Runs `command` and returns its `return` value; QmpError when QEMU answers an error. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const request = JSON.stringify(
      args === undefined ? { execute: command } : {
        execute: command,
        arguments: args,
      },
    );
    await this.#connection.write(new TextEncoder().encode(request + "\n"));
    while (true) {
      const reply = await this.#next();
      if ("event" in reply) continue;
      if ("error" in reply) {
        throw new QmpError(`Cannot run QMP command "${command}": ${reply.error.desc}`);
      }
      if ("return" in reply) return reply.return;
    }
  }

  close(): void {
    try {
      this.#connection.close();
    } catch {
      // Already closed.
    }
  }

  async #next(): Promise<QmpReply> {
    const { value, done } = await this.#lines.next();
    if (done) throw new QmpError("Cannot read from QMP: QEMU closed the connection");
    const parsed = QmpReply.safeParse(JSON.parse(value));
    if (!parsed.success) throw new QmpError(`Cannot read from QMP: unexpected reply ${value}`);
    return parsed.data;
  }
}

/** How long a starting QEMU has to answer on QMP. */
const STARTING_QMP_TIMEOUT_MS = 10_000;

/**
 * Runs `use` on the QMP of a QEMU that was just spawned (its socket appears some tens of ms
 * later). Undefined when QEMU exits first: a command failing because QEMU died is its exit,
 * reported on its own path, not a QMP failure.
 */
export async function withStartingQemu<T>(
  qmpSocket: string,
  exited: Promise<unknown>,
  use: (client: QmpClient) => Promise<T>,
): Promise<T | undefined> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + STARTING_QMP_TIMEOUT_MS;
  while (!gone) {
    let client: QmpClient;
    try {
      client = await QmpClient.connect(qmpSocket, 0);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    try {
      return await use(client);
    } catch (error) {
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 200))]);
      if (!gone) throw error;
    } finally {
      client.close();
    }
  }
  return undefined;
}

function splitLines(): TransformStream<string, string> {
  let buffered = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== "") controller.enqueue(line);
      }
    },
  });
}
