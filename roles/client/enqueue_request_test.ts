import { assertEquals, assertThrows } from "../../lib/testing/asserts.ts";
import { TmlError } from "../../lib/errors.ts";
import { buildEnqueueRequest, parseParameters } from "./enqueue_request.ts";

const IMAGE = "a".repeat(64);

function usageError(fn: () => unknown, includes: string): TmlError {
  const error = assertThrows(fn, TmlError, includes);
  assertEquals(error.status, 400, "a usage error (exit code 2)");
  return error;
}

Deno.test("parseParameters() reads the CI JSON object and the single-parameter flags", () => {
  assertEquals(
    parseParameters({
      parameters: '{"gh-actions-runner-encoded-jit-config": {"value": "abc", "secret": true}}',
      parameter: ["a=1", "b=x=y"],
      secretParameter: ["s="],
    }),
    {
      "gh-actions-runner-encoded-jit-config": { value: "abc", secret: true },
      a: { value: "1", secret: false },
      b: { value: "x=y", secret: false },
      s: { value: "", secret: true },
    },
  );
});

Deno.test("parseParameters() lets a single flag replace an entry of --parameters", () => {
  assertEquals(
    parseParameters({ parameters: '{"a": {"value": "1"}}', secretParameter: ["a=2"] }),
    { a: { value: "2", secret: true } },
  );
});

Deno.test("parseParameters() treats an empty --parameters as none", () => {
  assertEquals(parseParameters({ parameters: "" }), {});
  assertEquals(parseParameters({ parameters: "  " }), {});
});

Deno.test("parseParameters() refuses JSON that is not an object, naming the flag", () => {
  usageError(() => parseParameters({ parameters: "{x" }), "--parameters: expected a JSON object");
  usageError(() => parseParameters({ parameters: "[]" }), "got an array");
  usageError(() => parseParameters({ parameters: "null", parameter: ["a=1"] }), "got null");
  usageError(() => parseParameters({ parameters: '"x"' }), "got string");
  usageError(
    () => parseParameters({ parameter: ["novalue"] }),
    '--parameter: expected NAME=VALUE, got "novalue"',
  );
  usageError(() => parseParameters({ secretParameter: ["=v"] }), "--secret-parameter");
});

Deno.test("parseParameters() keeps a parameter named __proto__ as a parameter", () => {
  const parameters = parseParameters({ parameter: ["__proto__=x"] });
  assertEquals(Object.keys(parameters), ["__proto__"]);
  assertEquals(Object.getPrototypeOf(parameters), Object.prototype);
});

Deno.test("buildEnqueueRequest() names the field inside --parameters", () => {
  const error = usageError(
    () => buildEnqueueRequest(IMAGE, { parameters: '{"x": {"value": 1, "secret": true}}' }, []),
    "Cannot enqueue job: --parameters: x.value: expected string",
  );
  assertEquals(error.field, "parameters.x.value");
  usageError(
    () => buildEnqueueRequest(IMAGE, { parameters: '{"x": {"value": "1", "secret": "yes"}}' }, []),
    "--parameters: x.secret: expected boolean",
  );
  usageError(
    () => buildEnqueueRequest(IMAGE, { parameters: '{"x": {"value": "1", "extra": 1}}' }, []),
    "--parameters: x:",
  );
  usageError(
    () => buildEnqueueRequest(IMAGE, { parameters: '{"../etc": {"value": "1"}}' }, []),
    "--parameters: ../etc: expected 1-128 characters",
  );
});

Deno.test("buildEnqueueRequest() names the flag of each other invalid input", () => {
  usageError(() => buildEnqueueRequest("abc", {}, []), "image_id: expected 64 lowercase hex");
  usageError(() => buildEnqueueRequest(IMAGE, { tagConfig: "board:(x" }, []), "--tag-config:");
  usageError(
    () => buildEnqueueRequest(IMAGE, { timeout: "soon" }, []),
    '--timeout: expected a duration such as "30m"',
  );
  usageError(() => buildEnqueueRequest(IMAGE, { queueTimeout: "-1" }, []), "--queue-timeout:");
  usageError(
    () => buildEnqueueRequest(IMAGE, { restartCount: "two" }, []),
    '--restart-count: expected a whole number, got "two"',
  );
  usageError(() => buildEnqueueRequest(IMAGE, { restartCount: "1000" }, []), "--restart-count:");
  usageError(() => buildEnqueueRequest(IMAGE, {}, ["not a key"]), "--ssh-key: 0:");
});

Deno.test("buildEnqueueRequest() sends durations as written and fills what CI scripts omit", () => {
  assertEquals(
    buildEnqueueRequest(IMAGE, {
      tagConfig: "board:nrf52840dk",
      parameters: '{"x": {"value": "1", "secret": true}}',
      restartCount: "2",
      timeout: "1.5h",
      queueTimeout: "600",
      workload: "make test",
    }, ["ssh-ed25519 AAAA k"]),
    {
      image_id: IMAGE,
      tag_config: "board:nrf52840dk",
      parameters: { x: { value: "1", secret: true } },
      ssh_keys: ["ssh-ed25519 AAAA k"],
      restart_count: 2,
      timeout: "1.5h",
      queue_timeout: "600",
      workload: "make test",
    },
  );
  assertEquals(buildEnqueueRequest(IMAGE, {}, []), {
    image_id: IMAGE,
    tag_config: "",
    parameters: {},
    ssh_keys: [],
    restart_count: undefined,
    timeout: undefined,
    queue_timeout: undefined,
    workload: null,
  });
});
