/**
 * The image store's HTTP/1.1 server: accepts connections, parses requests, hands each to a
 * fetch-style handler (the Hono app) and writes its Response back, keeping connections alive.
 *
 * Why not Deno.serve: a body it sends leaves JS as slices of the JS buffers, which hyper holds
 * after the write that handed them over resolves, so every block must be fresh memory, freed
 * only when the garbage collector runs (a 4 GiB download peaked at 151-171 MB), and bytes
 * reach the socket in 64 KiB writes (1 GiB to curl on loopback: ~0.72x nginx with sendfile).
 * Here a body is read with a BYOB reader into a few buffers owned by the connection, and a
 * buffer is read into again only after `conn.write` has handed all its bytes to the kernel.
 *
 *   idle ──head──> request ──handler──> response ──body sent──> idle (keep-alive)
 *    │               │ 4xx (bad head)       │ body failed mid-way: connection closed
 *    └─ EOF/shutdown: close                 └─ request body left unread, or close asked: close
 *
 * Request bodies are Content-Length or chunked (`Transfer-Encoding` with anything else is
 * refused, and with a Content-Length too, since the two disagreeing is how requests are
 * smuggled); `Expect: 100-continue` is answered when the handler first reads the body.
 */

/** Largest request head (request line and headers). */
const MAX_HEAD = 64 * 1024;
/**
 * Buffers a response body is read into, and their size: reads run ahead of socket writes by
 * up to BUFFERS - 1 of them. A body of unknown length (a JSON answer) gets one small buffer.
 * 1 GiB to curl on loopback against nginx, median of 5 interleaved runs: 4 x 256 KiB
 * 0.64-0.70x, 8 x 256 KiB 0.67-0.88x, 4 x 1 MiB 0.85-1.09x, 4 x 2 MiB 0.98-1.08x, 4 x 4 MiB
 * 0.89-1.14x: fewer, larger writes win, and 8 MiB per download is little memory.
 */
const BUFFERS = 4;
const BUFFER_SIZE = 2 << 20;
const SMALL_BUFFER_SIZE = 64 * 1024;
/** How long a connection may take to send a request head (idle keep-alive included). */
const HEAD_TIMEOUT_MS = 60_000;
/** How long a connection closed with its request body unread keeps reading (and dropping). */
const LINGER_MS = 2000;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("latin1");

export interface Http1Server {
  addr: Deno.NetAddr;
  finished: Promise<void>;
  /** Stops accepting, closes idle connections and waits for responses in progress. */
  shutdown(): Promise<void>;
}

export type Http1Handler = (request: Request) => Response | Promise<Response>;

/** Serves `handler` on `hostname:port` until shutdown. */
export function serveHttp1(
  options: {
    hostname: string;
    port: number;
    /** The answer to a request target the URL parser would rewrite (see Connection). */
    refuseTarget: (target: string) => Response;
    /** How long a connection may take to send a request head, idle ones included. */
    headTimeoutMs?: number;
  },
  handler: Http1Handler,
  onError: (error: unknown) => void,
): Http1Server {
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const connections = new Set<Connection>();
  let stopping = false;
  const finished = (async () => {
    try {
      for await (const conn of listener) {
        const connection = new Connection(
          conn,
          handler,
          options.refuseTarget,
          options.headTimeoutMs ?? HEAD_TIMEOUT_MS,
          onError,
          () => stopping,
        );
        connections.add(connection);
        connection.run().finally(() => connections.delete(connection));
      }
    } catch (error) {
      if (!stopping) throw error;
    }
    await Promise.all([...connections].map((connection) => connection.done));
  })();
  return {
    addr: listener.addr as Deno.NetAddr,
    finished,
    async shutdown() {
      stopping = true;
      listener.close();
      for (const connection of connections) connection.closeIfIdle();
      await finished;
    },
  };
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: Headers;
  framing: { length: number; chunked: boolean };
}

class Connection {
  readonly #conn: Deno.Conn;
  readonly #handler: Http1Handler;
  readonly #refuseTarget: (target: string) => Response;
  readonly #onError: (error: unknown) => void;
  readonly #stopping: () => boolean;
  readonly #headTimeoutMs: number;
  readonly #input: ConnInput;
  #idle = true;
  #closed = false;
  done: Promise<void> = Promise.resolve();

  constructor(
    conn: Deno.Conn,
    handler: Http1Handler,
    refuseTarget: (target: string) => Response,
    headTimeoutMs: number,
    onError: (error: unknown) => void,
    stopping: () => boolean,
  ) {
    this.#headTimeoutMs = headTimeoutMs;
    this.#conn = conn;
    this.#handler = handler;
    this.#refuseTarget = refuseTarget;
    this.#onError = onError;
    this.#stopping = stopping;
    this.#input = new ConnInput(conn);
  }

  run(): Promise<void> {
    this.done = this.#serve().catch(() => {}).finally(() => this.#close());
    return this.done;
  }

  closeIfIdle(): void {
    if (this.#idle) this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer's reset.
    }
  }

  async #serve(): Promise<void> {
    // Small responses are written as one piece; without this, Nagle's algorithm holds a body
    // written after its head until the client's delayed ACK (40 ms).
    (this.#conn as Deno.TcpConn).setNoDelay?.(true);
    while (!this.#stopping()) {
      this.#idle = true;
      let head: RequestHead;
      try {
        // A client that holds a connection without sending a request (idle keep-alive, or
        // trickling a head) is cut off, so connections cannot pile up forever.
        const timer = setTimeout(() => this.#close(), this.#headTimeoutMs);
        const bytes = await this.#input.readHead().finally(() => clearTimeout(timer));
        if (bytes === null) return;
        this.#idle = false;
        head = parseHead(bytes);
      } catch (error) {
        if (!(error instanceof HttpError)) return;
        await this.#writeAll(ENCODER.encode(
          `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status]}\r\nconnection: close\r\n` +
            `content-type: text/plain\r\ncontent-length: ${error.message.length}\r\n\r\n` +
            error.message,
        ));
        return;
      }
      if (!await this.#respond(head)) return;
    }
  }

  /**
   * Ends a connection whose request body was left unread (a refused upload). Closing a socket
   * with unread bytes makes the kernel send a reset, which can destroy the response still on
   * its way to the client: send FIN instead, then discard what the client still sends, for a
   * while (what nginx calls lingering close).
   */
  async #linger(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch {
      return;
    }
    const timer = setTimeout(() => this.#close(), LINGER_MS);
    const sink = new Uint8Array(64 * 1024);
    try {
      while ((await this.#conn.read(sink)) !== null);
    } catch {
      // Closed by the timer, or reset by the client.
    } finally {
      clearTimeout(timer);
    }
  }

  /** Answers one request; false when the connection cannot carry another. */
  async #respond(head: RequestHead): Promise<boolean> {
    const body = new RequestBody(this.#input, head, (bytes) => this.#writeAll(bytes));
    const host = head.headers.get("host") ?? "localhost";
    let request: Request | undefined;
    let response: Response | undefined;
    try {
      if (!head.target.startsWith("/")) throw new TypeError("not origin-form");
      const url = new URL(`http://${host}${head.target}`);
      // The URL parser resolves dot segments (also %2e ones) and re-encodes: the handler must
      // see the path as sent (request_path.ts refuses traversal on it), so such a target is
      // answered by refuseTarget rather than rewritten.
      if (url.href.slice(url.origin.length) !== head.target) {
        response = this.#refuseTarget(head.target);
      } else {
        request = new Request(url, {
          method: head.method,
          headers: head.headers,
          body: body.framed && head.method !== "GET" && head.method !== "HEAD" ? body.stream : null,
          duplex: "half",
        } as RequestInit);
      }
    } catch {
      await this.#writeAll(ENCODER.encode(
        "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
      ));
      return false;
    }
    if (request !== undefined) {
      try {
        response = await this.#handler(request);
      } catch (error) {
        this.#onError(error);
        response = new Response("Internal Server Error", { status: 500 });
      }
    }
    response = response!;
    let keepAlive = wantsKeepAlive(head) && !this.#stopping();
    const bodyless = head.method === "HEAD" || response.status === 204 ||
      response.status === 304 || response.status < 200;
    const length = response.headers.get("content-length");
    const chunked = !bodyless && response.body !== null && length === null;
    // An HTTP/1.0 client cannot take chunks: the body then ends where the connection does.
    if (chunked && head.version === "HTTP/1.0") keepAlive = false;
    // The request body must have been read to its end before another request can follow.
    if (!body.ended) keepAlive = false;
    let text = `HTTP/1.1 ${response.status} ${
      STATUS_TEXT[response.status] ?? response.statusText
    }\r\ndate: ${httpDate()}\r\n`;
    for (const [name, value] of response.headers) {
      if (name === "connection" || name === "transfer-encoding" || name === "keep-alive") continue;
      text += `${name}: ${value}\r\n`;
    }
    if (!bodyless && response.body === null && length === null) text += "content-length: 0\r\n";
    if (chunked && head.version === "HTTP/1.1") text += "transfer-encoding: chunked\r\n";
    if (!keepAlive) text += "connection: close\r\n";
    else if (head.version === "HTTP/1.0") text += "connection: keep-alive\r\n";
    text += "\r\n";
    const headBytes = ENCODER.encode(text);
    if (bodyless || response.body === null) {
      await response.body?.cancel();
      await this.#writeAll(headBytes);
    } else {
      const expected = length === null ? undefined : Number(length);
      const sent = await this.#sendBody(
        response.body,
        headBytes,
        chunked && head.version === "HTTP/1.1",
        expected,
      );
      // A body that failed or disagreed with its Content-Length cut the response short: only
      // closing the connection tells the client.
      if (sent === undefined || (expected !== undefined && sent !== expected)) return false;
    }
    // Still-unread bytes of a request body: close rather than read on into them.
    if (!body.ended) await this.#linger();
    return keepAlive && body.ended;
  }

  /**
   * Writes `head` and the body; returns the bytes of body sent, or undefined if the body
   * failed. A byte stream is read with BYOB reads into the connection's buffers, BUFFERS - 1
   * ahead of the socket; each buffer is read into again only once its bytes are written.
   */
  async #sendBody(
    body: ReadableStream<Uint8Array>,
    head: Uint8Array,
    chunked: boolean,
    expected: number | undefined,
  ): Promise<number | undefined> {
    let pendingHead: Uint8Array | undefined = head;
    let sent = 0;
    const send = async (chunk: Uint8Array) => {
      if (chunk.length === 0) return;
      const frame = chunked ? ENCODER.encode(`${chunk.length.toString(16)}\r\n`) : undefined;
      const prefix = concat(pendingHead, frame);
      pendingHead = undefined;
      // A small chunk rides along with the head in one write.
      if (prefix !== undefined && chunk.length <= 16 * 1024) {
        await this.#writeAll(concat(prefix, chunk)!);
      } else {
        if (prefix !== undefined) await this.#writeAll(prefix);
        await this.#writeAll(chunk);
      }
      if (chunked) await this.#writeAll(ENCODER.encode("\r\n"));
      sent += chunk.length;
    };
    let byob: ReadableStreamBYOBReader | undefined;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: its chunks are the stream's own, sent as they come.
    }
    try {
      if (byob !== undefined) {
        const reader = byob;
        // Each read takes a buffer over and gives it back as its result's buffer. A failing
        // body rejects every pending read; the first is awaited, the rest must not go unheard.
        const read = (buffer: Uint8Array<ArrayBuffer>) => {
          const pending = reader.read(buffer);
          pending.catch(() => {});
          return pending;
        };
        const { size, count } = bufferPlan(expected);
        const reads = Array.from({ length: count }, () => read(new Uint8Array(size)));
        while (true) {
          const { value, done } = await reads.shift()!;
          if (done) break;
          await send(value);
          reads.push(read(new Uint8Array(value.buffer)));
        }
        // Reads still pending when the body ended are not reliably answered: releasing the
        // reader rejects them (their buffers go with them).
        reader.releaseLock();
      } else {
        for await (const chunk of body) await send(chunk);
      }
      if (pendingHead !== undefined) await this.#writeAll(pendingHead);
      if (chunked) await this.#writeAll(ENCODER.encode("0\r\n\r\n"));
      return sent;
    } catch (error) {
      await body.cancel(error).catch(() => {});
      return undefined;
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }
}

/** Buffered reads from a connection: request heads, then body bytes. */
class ConnInput {
  readonly #conn: Deno.Conn;
  #buffer = new Uint8Array(MAX_HEAD);
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next request head without its final CRLF CRLF; null at a clean end of input. */
  async readHead(): Promise<Uint8Array | null> {
    // Bytes after #start already searched (offsets move when #fill compacts the buffer).
    let scanned = 0;
    while (true) {
      // Empty lines before a request line are allowed (RFC 9112, section 2.2).
      while (
        this.#end - this.#start >= 2 && this.#buffer[this.#start] === 13 &&
        this.#buffer[this.#start + 1] === 10
      ) {
        this.#start += 2;
        scanned = 0;
      }
      for (let i = this.#start + scanned; i + 3 < this.#end; i++) {
        if (
          this.#buffer[i] === 13 && this.#buffer[i + 1] === 10 && this.#buffer[i + 2] === 13 &&
          this.#buffer[i + 3] === 10
        ) {
          const head = this.#buffer.slice(this.#start, i);
          this.#start = i + 4;
          return head;
        }
      }
      scanned = Math.max(0, this.#end - this.#start - 3);
      if (this.#end - this.#start >= MAX_HEAD) {
        throw new HttpError(431, "request head too large");
      }
      if (!await this.#fill()) {
        if (this.#end === this.#start) return null;
        throw new HttpError(400, "connection closed inside a request head");
      }
    }
  }

  /** A line of at most `max` bytes without its CRLF (chunk sizes, trailers). */
  async readLine(max: number): Promise<string> {
    let scanned = 0;
    while (true) {
      for (let i = this.#start + scanned; i + 1 < this.#end; i++) {
        if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) {
          const line = DECODER.decode(this.#buffer.subarray(this.#start, i));
          this.#start = i + 2;
          return line;
        }
      }
      scanned = Math.max(0, this.#end - this.#start - 1);
      if (this.#end - this.#start > max || this.#end - this.#start === this.#buffer.length) {
        throw new Error("chunked body: line too long");
      }
      if (!await this.#fill()) throw new Error("connection closed inside a chunked body");
    }
  }

  /** Reads into `view`: buffered bytes first, then straight from the socket. */
  async readInto(view: Uint8Array): Promise<number | null> {
    if (this.#end > this.#start) {
      const n = Math.min(view.length, this.#end - this.#start);
      view.set(this.#buffer.subarray(this.#start, this.#start + n));
      this.#start += n;
      return n;
    }
    return await this.#conn.read(view);
  }

  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) return true;
    const n = await this.#conn.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }
}

/**
 * A request's body as a byte stream (so the upload route's BYOB reads land straight in its
 * 1 MiB blocks), framed by Content-Length or chunked coding.
 */
class RequestBody {
  readonly framed: boolean;
  readonly stream: ReadableStream<Uint8Array>;
  ended: boolean;
  #remaining: number;
  readonly #chunked: boolean;
  #chunkLeft = 0;

  constructor(
    input: ConnInput,
    head: RequestHead,
    writeAll: (bytes: Uint8Array) => Promise<void>,
  ) {
    const { length, chunked } = head.framing;
    this.#chunked = chunked;
    this.#remaining = length;
    this.framed = chunked || length > 0;
    this.ended = !this.framed;
    let continued = head.version === "HTTP/1.0" ||
      head.headers.get("expect")?.toLowerCase() !== "100-continue";
    this.stream = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 64 * 1024,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        try {
          if (!continued) {
            continued = true;
            await writeAll(ENCODER.encode("HTTP/1.1 100 Continue\r\n\r\n"));
          }
          const n = await this.#read(input, request.view as Uint8Array);
          if (n === 0) {
            controller.close();
            request.respond(0);
          } else {
            request.respond(n);
          }
        } catch (error) {
          controller.error(error);
        }
      },
    });
  }

  /** Reads body bytes into `view`; 0 at the end of the body. */
  async #read(input: ConnInput, view: Uint8Array): Promise<number> {
    if (this.ended) return 0;
    if (this.#chunked) {
      if (this.#chunkLeft === 0) {
        const line = await input.readLine(4096);
        const size = line.split(";")[0].trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(size)) throw new Error("chunked body: bad chunk size");
        this.#chunkLeft = parseInt(size, 16);
        if (this.#chunkLeft === 0) {
          // Trailers, if any, are read and dropped.
          while ((await input.readLine(8192)) !== "");
          this.ended = true;
          return 0;
        }
      }
      const n = await input.readInto(view.subarray(0, Math.min(view.length, this.#chunkLeft)));
      if (n === null) throw new Error("connection closed inside a chunked body");
      this.#chunkLeft -= n;
      if (this.#chunkLeft === 0 && (await input.readLine(2)) !== "") {
        throw new Error("chunked body: chunk not followed by CRLF");
      }
      return n;
    }
    const n = await input.readInto(view.subarray(0, Math.min(view.length, this.#remaining)));
    if (n === null) {
      throw new Error(`connection closed with ${this.#remaining} bytes of the body unsent`);
    }
    this.#remaining -= n;
    if (this.#remaining === 0) this.ended = true;
    return n;
  }
}

function parseHead(bytes: Uint8Array): RequestHead {
  const lines = DECODER.decode(bytes).split("\r\n");
  const parts = lines[0].split(" ");
  if (parts.length !== 3 || !TOKEN.test(parts[0]) || parts[1] === "") {
    throw new HttpError(400, "malformed request line");
  }
  const [method, target, version] = parts;
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new HttpError(505, "only HTTP/1.0 and HTTP/1.1 are served");
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    // A line starting with whitespace (obsolete folding) has no token before its colon.
    if (colon <= 0 || !TOKEN.test(name)) throw new HttpError(400, "malformed header line");
    try {
      headers.append(name, line.slice(colon + 1).trim());
    } catch {
      throw new HttpError(400, "malformed header value");
    }
  }
  if (version === "HTTP/1.1" && headers.get("host") === null) {
    throw new HttpError(400, "missing Host header");
  }
  const head: RequestHead = {
    method,
    target,
    version,
    headers,
    framing: { length: 0, chunked: false },
  };
  head.framing = bodyFraming(head);
  return head;
}

function bodyFraming(head: RequestHead): { length: number; chunked: boolean } {
  const transferEncoding = head.headers.get("transfer-encoding");
  const contentLength = head.headers.get("content-length");
  if (transferEncoding !== null) {
    if (contentLength !== null) {
      throw new HttpError(400, "both Transfer-Encoding and Content-Length");
    }
    if (transferEncoding.toLowerCase() !== "chunked" || head.version === "HTTP/1.0") {
      throw new HttpError(501, "only chunked transfer coding is accepted");
    }
    return { length: 0, chunked: true };
  }
  if (contentLength === null) return { length: 0, chunked: false };
  if (!/^\d{1,15}$/.test(contentLength)) throw new HttpError(400, "bad Content-Length");
  return { length: Number(contentLength), chunked: false };
}

function wantsKeepAlive(head: RequestHead): boolean {
  const tokens = (head.headers.get("connection") ?? "").toLowerCase().split(",").map((token) =>
    token.trim()
  );
  if (tokens.includes("close")) return false;
  return head.version === "HTTP/1.1" || tokens.includes("keep-alive");
}

function bufferPlan(length: number | undefined): { size: number; count: number } {
  if (length === undefined) return { size: SMALL_BUFFER_SIZE, count: 1 };
  const size = Math.max(1, Math.min(BUFFER_SIZE, length));
  return { size, count: Math.max(1, Math.min(BUFFERS, Math.ceil(length / size))) };
}

function concat(a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

let dateSecond = 0;
let dateText = "";
function httpDate(): string {
  const now = Date.now();
  if (Math.floor(now / 1000) !== dateSecond) {
    dateSecond = Math.floor(now / 1000);
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

const STATUS_TEXT: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  416: "Range Not Satisfiable",
  422: "Unprocessable Content",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};
