import { createHash } from "node:crypto";
import { assertEquals, assertMatch, assertStringIncludes } from "../../lib/testing/asserts.ts";
import { serveHttp1 } from "./http1_server.ts";

/** A server answering every request with its method, path, body length and body SHA-256. */
async function withEchoServer(
  test: (port: number) => Promise<void>,
  handler?: (request: Request) => Response | Promise<Response>,
  headTimeoutMs?: number,
): Promise<void> {
  const server = serveHttp1(
    {
      hostname: "127.0.0.1",
      port: 0,
      refuseTarget: (target) => new Response(`refused ${target}`, { status: 400 }),
      headTimeoutMs,
    },
    handler ?? (async (request) => {
      const body = new Uint8Array(await request.arrayBuffer());
      const sha256 = createHash("sha256").update(body).digest("hex");
      return Response.json({ method: request.method, url: request.url, size: body.length, sha256 });
    }),
    () => {},
  );
  try {
    await test(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

/** Sends `text` (then `bytes`, if given) and reads until the server closes. */
async function exchange(port: number, text: string, bytes?: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, new TextEncoder().encode(text));
  if (bytes !== undefined) await writeAll(conn, bytes);
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  conn.close();
  return new TextDecoder().decode(await new Blob(chunks).arrayBuffer());
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test("serveHttp1() answers several requests on one keep-alive connection", async () => {
  await withEchoServer(async (port) => {
    const reply = await exchange(
      port,
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
        "PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
        "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const statuses = reply.match(/HTTP\/1\.1 \d+/g);
    assertEquals(statuses, ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
    assertStringIncludes(reply, `"url":"http://x/a"`);
    assertStringIncludes(
      reply,
      `"method":"PUT","url":"http://x/b","size":3,"sha256":"${
        sha256(new TextEncoder().encode("abc"))
      }"`,
    );
    assertStringIncludes(reply, `"url":"http://x/c"`);
    assertStringIncludes(reply, "connection: close");
  });
});

Deno.test("serveHttp1() reads chunked request bodies and answers Expect: 100-continue", async () => {
  await withEchoServer(async (port) => {
    const reply = await exchange(
      port,
      "PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n" +
        "Connection: close\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
    );
    assertMatch(reply, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assertStringIncludes(reply, `"size":5,"sha256":"${sha256(new TextEncoder().encode("abcde"))}"`);
  });
});

Deno.test("serveHttp1() refuses malformed and smuggling-prone requests with 4xx/5xx", async () => {
  await withEchoServer(async (port) => {
    const cases: [string, RegExp][] = [
      ["GARBAGE\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["GET / HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 /], // no Host
      ["GET / HTTP/2.0\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 505 /],
      ["GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", /^HTTP\/1\.1 400 /],
      [
        "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        /^HTTP\/1\.1 400 /,
      ],
      ["PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", /^HTTP\/1\.1 501 /],
      ["PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", /^HTTP\/1\.1 400 /],
      [`GET / HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(70_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
    ];
    for (const [request, expected] of cases) {
      assertMatch(await exchange(port, request), expected, JSON.stringify(request.slice(0, 80)));
    }
  });
});

Deno.test("serveHttp1() sends a large byte-stream body intact through its reused buffers", async () => {
  // Distinct bytes in every block: a buffer read into again before its bytes were written out
  // would change the digest.
  const size = 9 * (1 << 20) + 12345;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) crypto.getRandomValues(bytes.subarray(i, i + 4096));
  let offset = 0;
  await withEchoServer(async (port) => {
    const response = await fetch(`http://127.0.0.1:${port}/blob`);
    assertEquals(response.headers.get("content-length"), String(size));
    const body = new Uint8Array(await response.arrayBuffer());
    assertEquals([body.length, sha256(body)], [size, sha256(bytes)]);
    const head = await fetch(`http://127.0.0.1:${port}/blob`, { method: "HEAD" });
    assertEquals([head.status, (await head.arrayBuffer()).byteLength], [200, 0]);
  }, () => {
    offset = 0;
    // Uneven pieces, each filling part of the reader's buffer.
    const body = new ReadableStream({
      type: "bytes",
      async pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view as Uint8Array;
        if (offset === size) {
          controller.close();
          request.respond(0);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 0));
        const n = Math.min(view.length, size - offset, 300_000 + (offset % 7919));
        view.set(bytes.subarray(offset, offset + n));
        offset += n;
        request.respond(n);
      },
    });
    return new Response(body, { headers: { "content-length": String(size) } });
  });
});

Deno.test("serveHttp1() sends a body of unknown length chunked, and one that fails cut short", async () => {
  await withEchoServer(async (port) => {
    const whole = await exchange(port, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assertStringIncludes(whole, "transfer-encoding: chunked");
    assertStringIncludes(whole, "\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    const cut = await exchange(port, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    assertMatch(cut, /^HTTP\/1\.1 200 /);
    assertEquals(cut.endsWith("0\r\n\r\n"), false);
  }, (request) => {
    const fail = new URL(request.url).pathname === "/fail";
    const parts = ["hello", " world"];
    return new Response(
      new ReadableStream({
        pull(controller) {
          const part = parts.shift();
          if (part !== undefined) controller.enqueue(new TextEncoder().encode(part));
          else if (fail) controller.error(new Error("disk gone"));
          else controller.close();
        },
      }),
    );
  });
});

Deno.test("serveHttp1() answers a refused upload whose body it never reads", async () => {
  await withEchoServer(async (port) => {
    const reply = await exchange(
      port,
      "PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n",
      new Uint8Array(4 << 20),
    );
    assertMatch(reply, /^HTTP\/1\.1 401 /);
    assertStringIncludes(reply, "connection: close");
  }, () => new Response("no", { status: 401 }));
});

Deno.test("serveHttp1() refuses a target the URL parser would rewrite (dot segments)", async () => {
  await withEchoServer(async (port) => {
    for (const target of ["/blobs/../../etc/passwd", "/blobs/%2e%2e/x", "/a/./b"]) {
      const reply = await exchange(
        port,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assertMatch(reply, /^HTTP\/1\.1 400 /, target);
      assertStringIncludes(reply, `refused ${target}`);
    }
    const plain = await exchange(
      port,
      "GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assertStringIncludes(plain, `"url":"http://x/a/b?c=d"`);
  });
});

Deno.test("serveHttp1() closes a connection that sends no request head in time", async () => {
  await withEchoServer(
    async (port) => {
      // Half a head, then nothing: the server must end the connection by itself.
      const reply = await exchange(port, "GET / HTTP/1.1\r\nHost:");
      assertEquals(reply, "");
      // A keep-alive connection is answered, then closed once idle for as long.
      const answered = await exchange(port, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
      assertMatch(answered, /^HTTP\/1\.1 200 /);
    },
    undefined,
    100,
  );
});
