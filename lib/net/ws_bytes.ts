/**
 * One byte stream each way over a WebSocket, with flow control (the user-websocket framing of
 * `lib/protocol/rendezvous.ts`): binary frames are data, text frames are `ack` and `eof`.
 *
 * A WebSocket cannot stop reading, so without credit a fast sender and a slow reader would pile
 * bytes up in the reader's memory. Here a sender keeps at most `window` bytes unacknowledged
 * and waits for `ack`s; a reader acknowledges bytes once the caller has taken them (`read`), and
 * a peer that sends past the window, or sends garbage, is cut off with a close code naming why.
 */
import {
  MAX_USER_FRAME_BYTES,
  USER_STREAM_WINDOW,
  UserStreamControl,
} from "../protocol/rendezvous.ts";
import { formatZodError } from "../zod_issues.ts";
import type { ByteStream } from "./splice.ts";

/** Close code for a peer that broke the framing or the flow-control window. */
export const CLOSE_PROTOCOL_ERROR = 1008;

export interface WsClose {
  code: number;
  reason: string;
}

/** A websocket that closed (or never opened): the peer's code and reason, as the message. */
export class WebSocketClosedError extends Error {
  constructor(readonly close: WsClose) {
    super(closedMessage(close));
  }
}

export class WebSocketBytes implements ByteStream {
  readonly #socket: WebSocket;
  readonly #window: number;
  readonly #queue: Uint8Array[] = [];
  /** Bytes received and not yet acknowledged, taken by the caller or not. */
  #received = 0;
  /** Bytes the caller has taken since the last ack. */
  #taken = 0;
  /** Bytes sent and not yet acknowledged by the peer. */
  #unacked = 0;
  #peerEof = false;
  #sentEof = false;
  #close?: WsClose;
  #wake: Array<() => void> = [];
  /** Settles when the server says `connected` (which may arrive along with the open). */
  readonly #connected: Promise<void>;
  #onConnected!: () => void;
  readonly closed: Promise<WsClose>;
  /** Settles once the socket is open, or closed without ever opening. */
  readonly opened: Promise<void>;

  /**
   * Opens a user websocket to `url` and resolves once the server says `connected`; a refusal
   * rejects with a `WebSocketClosedError` carrying the server's close code and reason (or the
   * HTTP failure).
   */
  static async connect(
    url: string,
    options: { headers?: Record<string, string>; window?: number } = {},
  ): Promise<WebSocketBytes> {
    const socket = new WebSocket(url, { headers: options.headers });
    const stream = new WebSocketBytes(socket, options);
    let failure = "";
    socket.onerror = (event) => (failure = (event as ErrorEvent).message ?? "");
    await Promise.race([stream.#connected, stream.closed]);
    if (stream.#close !== undefined) {
      const { code, reason } = stream.#close;
      throw new WebSocketClosedError(
        reason === "" && failure !== "" ? { code, reason: failure } : stream.#close,
      );
    }
    return stream;
  }

  /** Wraps a socket (open, or opening); messages that arrived before this are not seen. */
  constructor(socket: WebSocket, options: { window?: number } = {}) {
    this.#socket = socket;
    this.#window = options.window ?? USER_STREAM_WINDOW;
    socket.binaryType = "arraybuffer";
    let resolveClosed: (close: WsClose) => void;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    this.#connected = new Promise((resolve) => (this.#onConnected = resolve));
    this.opened = socket.readyState === WebSocket.OPEN ? Promise.resolve() : Promise.race([
      new Promise<void>((resolve) => socket.addEventListener("open", () => resolve())),
      this.closed.then(() => {}),
    ]);
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onerror = () => {};
    socket.onclose = (event) => {
      this.#close ??= { code: event.code, reason: event.reason };
      this.#wakeAll();
      resolveClosed(this.#close);
    };
  }

  /** Copies the next bytes into `buffer`; null once the peer has sent `eof` and all was read. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (!await this.#waitForBytes()) return null;
    const chunk = this.#queue[0];
    const count = Math.min(chunk.length, buffer.length);
    buffer.set(chunk.subarray(0, count));
    if (count === chunk.length) this.#queue.shift();
    else this.#queue[0] = chunk.subarray(count);
    this.#took(count);
    return count;
  }

  /** The next bytes as they arrived, without a copy (what a splice uses); null after eof. */
  async readChunk(): Promise<Uint8Array | null> {
    if (!await this.#waitForBytes()) return null;
    const chunk = this.#queue.shift()!;
    this.#took(chunk.length);
    return chunk;
  }

  /** Sends all of `bytes`, in frames, as the peer's window allows. */
  async write(bytes: Uint8Array): Promise<number> {
    for (let offset = 0; offset < bytes.length;) {
      const size = Math.min(bytes.length - offset, MAX_USER_FRAME_BYTES, this.#window);
      while (this.#unacked + size > this.#window) {
        if (this.#close !== undefined) break;
        await new Promise<void>((resolve) => this.#wake.push(resolve));
      }
      if (this.#close !== undefined || this.#sentEof) {
        if (this.#close !== undefined) throw new WebSocketClosedError(this.#close);
        throw new Error("Cannot write to the websocket: this side already sent eof");
      }
      // send() copies the bytes before it returns (as the WebSocket standard says, and
      // checked for Deno), so the caller may reuse its buffer at once.
      this.#socket.send(bytes.subarray(offset, offset + size));
      this.#unacked += size;
      offset += size;
    }
    return bytes.length;
  }

  /** Tells the client the host's port is reached (the server's side, once). */
  accept(): void {
    this.#sendText({ type: "connected" });
  }

  closeWrite(): void {
    if (this.#sentEof) return;
    this.#sentEof = true;
    this.#sendText({ type: "eof" });
  }

  /** Closes the websocket; `code` and `reason` tell the peer why when it is not a normal end. */
  close(code = 1000, reason = ""): void {
    if (this.#close !== undefined) return;
    this.#close = { code, reason };
    this.#wakeAll();
    try {
      this.#socket.close(code, truncateReason(reason));
    } catch {
      // Already closing.
    }
  }

  /** Waits until bytes are queued: false after the peer's eof, a throw once closed. */
  async #waitForBytes(): Promise<boolean> {
    while (this.#queue.length === 0) {
      if (this.#peerEof) return false;
      if (this.#close !== undefined) throw new WebSocketClosedError(this.#close);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
    return true;
  }

  #took(count: number): void {
    this.#taken += count;
    // A blocked sender has more than window - one frame unacknowledged, all of it taken here
    // eventually, so acknowledging every quarter window can never leave it waiting forever.
    if (this.#taken >= this.#window / 4) {
      this.#sendText({ type: "ack", bytes: this.#taken });
      this.#received -= this.#taken;
      this.#taken = 0;
    }
  }

  #receive(data: unknown): void {
    if (typeof data === "string") {
      let parsed;
      try {
        parsed = UserStreamControl.safeParse(JSON.parse(data));
      } catch {
        return this.#violation("Cannot read stream control: not JSON");
      }
      if (!parsed.success) {
        return this.#violation(
          `Cannot read stream control: ${formatZodError(parsed.error, "text frame")}`,
        );
      }
      if (parsed.data.type === "connected") this.#onConnected();
      else if (parsed.data.type === "eof") this.#peerEof = true;
      else if (parsed.data.bytes > this.#unacked) {
        return this.#violation("Cannot read stream control: ack for more bytes than were sent");
      } else this.#unacked -= parsed.data.bytes;
      this.#wakeAll();
      return;
    }
    if (!(data instanceof ArrayBuffer)) return this.#violation("Cannot read frame: unknown type");
    if (this.#peerEof) return this.#violation("Cannot read frame: data after eof");
    if (data.byteLength > MAX_USER_FRAME_BYTES) {
      return this.#violation(`Cannot read frame: larger than ${MAX_USER_FRAME_BYTES} bytes`);
    }
    this.#received += data.byteLength;
    if (this.#received > this.#window) {
      return this.#violation(
        `Cannot read frame: the peer sent past its ${this.#window}-byte window`,
      );
    }
    if (data.byteLength > 0) this.#queue.push(new Uint8Array(data));
    this.#wakeAll();
  }

  #violation(message: string): void {
    this.close(CLOSE_PROTOCOL_ERROR, message);
  }

  #sendText(control: UserStreamControl): void {
    if (this.#close !== undefined || this.#socket.readyState !== WebSocket.OPEN) return;
    this.#socket.send(JSON.stringify(control));
  }

  #wakeAll(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}

/** A close reason is at most 123 bytes of UTF-8. */
export function truncateReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "") + "...";
}

function closedMessage(close: WsClose): string {
  return close.reason === ""
    ? `the websocket closed (code ${close.code})`
    : `the websocket closed: ${close.reason}`;
}
