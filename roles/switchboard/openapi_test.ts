import { assert, assertEquals } from "../../lib/testing/asserts.ts";
import { buildApp } from "./app.ts";
import { Coordinator } from "./coordinator.ts";
import { buildOpenApiDocument, ROUTES } from "./openapi.ts";
import { openTestDeps } from "./test_deps.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("buildOpenApiDocument() converts every schema and resolves every reference", () => {
  const document: Json = buildOpenApiDocument();
  assertEquals(document.openapi, "3.1.0");
  const schemas = document.components.schemas;
  for (const [name, schema] of Object.entries<Json>(schemas)) {
    assertEquals(schema.type, "object", name);
    assert(Object.keys(schema.properties ?? {}).length > 0, `${name} has no properties`);
    assertEquals("$schema" in schema, false, name);
  }
  const refs = [...JSON.stringify(document).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
  assert(refs.length > ROUTES.length);
  for (const ref of refs) {
    const name = ref.replace("#/components/schemas/", "");
    assert(ref.startsWith("#/components/schemas/") && name in schemas, `dangling ${ref}`);
  }
});

Deno.test("buildOpenApiDocument() describes requests as sent and responses as written", () => {
  const schemas: Json = (buildOpenApiDocument() as Json).components.schemas;
  // Fields with defaults are optional in a request...
  assertEquals(schemas.EnqueueJobRequest.required, ["image_id"]);
  assertEquals(schemas.EnqueueJobRequest.additionalProperties, false);
  assertEquals(schemas.LoginRequest.required, ["user", "password"]);
  // ...and every field of a response is present.
  assert(schemas.JobView.required.includes("exit_status"));
  // Secret values are null in a response: the document says so.
  const parameter = schemas.JobView.properties.parameters.additionalProperties;
  assertEquals(parameter.properties.value.type, ["string", "null"]);
});

Deno.test("buildOpenApiDocument() marks public routes and names path and query parameters", () => {
  const paths: Json = (buildOpenApiDocument() as Json).paths;
  assertEquals(paths["/api/v1/tokens/login"].post.security, []);
  assertEquals(paths["/api/v1/supervisors/connect"].get.security, []);
  assertEquals(paths["/api/v1/jobs"].post.security, undefined);
  assert("401" in paths["/api/v1/jobs"].post.responses);
  assert("429" in paths["/api/v1/tokens/login"].post.responses);
  const wait = paths["/api/v1/jobs/{id}/wait"].get;
  assertEquals(
    wait.parameters.map((p: Json) => [p.name, p.in, p.required]),
    [["id", "path", true], ["timeout", "query", false]],
  );
  const list = paths["/api/v1/jobs"].get.parameters.map((p: Json) => p.name);
  assertEquals(list, ["state", "limit", "cursor"]);
  assertEquals(paths["/api/v1/tokens"].get.parameters[0].schema.format, "uuid");
  const ids = ROUTES.map((route) => route.path + route.method);
  assertEquals(new Set(ids).size, ids.length);
});

Deno.test({
  name: "buildOpenApiDocument() lists exactly the routes the switchboard serves",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const deps = await openTestDeps();
    try {
      const app = buildApp(deps, new Coordinator(deps.db, deps.config, deps.log));
      const served = new Set(
        app.routes
          .filter((route) => route.method !== "ALL")
          .map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, "{$1}")}`),
      );
      const document: Json = buildOpenApiDocument();
      const documented = new Set<string>();
      for (const [path, operations] of Object.entries<Json>(document.paths)) {
        for (const method of Object.keys(operations)) documented.add(`${method} ${path}`);
      }
      assertEquals([...served].filter((route) => !documented.has(route)), [], "undocumented");
      assertEquals([...documented].filter((route) => !served.has(route)), [], "not served");

      const response = await app.request("/api/v1/openapi.json");
      assertEquals(response.status, 200);
      assertEquals(await response.json(), document);
    } finally {
      await deps.close();
    }
  },
});
