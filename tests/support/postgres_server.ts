/**
 * A throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory on a free
 * port (never 5432, never the system cluster), fsync off, trust auth on 127.0.0.1. initdb
 * refuses to run as root, so as root the cluster runs as the `postgres` user.
 */
import { requireProgram } from "../../lib/system_packages.ts";
import { POSTGRES_SERVER } from "./system_programs.ts";
import { freePort } from "./tml_process.ts";

export interface PostgresServer {
  /** URL of the server's `tml_test` database. */
  url: string;
  port: number;
  /** Creates another empty database and returns its URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

export async function startPostgresServer(): Promise<PostgresServer> {
  // Resolve links (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) to find the
  // directory that also holds pg_ctl and createdb.
  const initdb = await Deno.realPath(await requireProgram(POSTGRES_SERVER));
  const bin = initdb.slice(0, initdb.lastIndexOf("/"));
  const dir = await Deno.makeTempDir({ prefix: "tml-pg-" });
  const dataDir = `${dir}/data`;
  const asRoot = Deno.uid() === 0;
  if (asRoot) await run(["chown", "postgres:postgres", dir], false);
  await run([
    `${bin}/initdb`,
    "-D",
    dataDir,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-sync",
  ], asRoot);
  let port = 0;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = freePort();
    const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off ` +
      `-c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    const started = await run(
      [`${bin}/pg_ctl`, "-D", dataDir, "-o", options, "-l", `${dir}/log`, "-w", "start"],
      asRoot,
      true,
    );
    if (started) break;
    if (attempt === 4) throw new Error(`Cannot start PostgreSQL: see ${dir}/log`);
  }
  const base = `postgres://postgres@127.0.0.1:${port}`;
  await run([
    `${bin}/createdb`,
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-U",
    "postgres",
    "tml_test",
  ], false);
  return {
    url: `${base}/tml_test`,
    port,
    async createDatabase() {
      const name = `tml_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      await run(
        [`${bin}/createdb`, "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name],
        false,
      );
      return `${base}/${name}`;
    },
    async stop() {
      await run([`${bin}/pg_ctl`, "-D", dataDir, "-m", "immediate", "-w", "stop"], asRoot, true);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function run(argv: string[], asPostgres: boolean, allowFailure = false): Promise<boolean> {
  const command = asPostgres ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const output = await new Deno.Command(command[0], {
    args: command.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success && !allowFailure) {
    throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return output.success;
}
