import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

/**
 * A real PostgreSQL server for tests, from Debian's `postgresql` package: initdb into a fresh temporary
 * directory, listening on 127.0.0.1 only, on a free port, torn down at the end. No mock: the
 * PostgreSQL store must meet the database's real locking and NOTIFY behaviour.
 */
export interface PgServer {
  port: number;
  /** The superuser's URL (password included: test-only credentials, never logged by the harness). */
  adminUrl: string;
  /** Creates an empty database and returns its postgresql:// URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

const run = promisify(execFile);
const ADMIN = "palyra_admin";
/** initdb refuses to run as root, so as root the server runs as nobody. */
const NOBODY = 65534;
const READY_TIMEOUT_MS = 30_000;
const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** The newest installed major's binaries (Debian keeps them off PATH). */
function binDir(): string {
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!majors[0])
    throw new Error(
      "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql",
    );
  return join(root, majors[0], "bin");
}

/** A port nobody listens on right now: bind port 0, read it, release it. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export async function startPostgres(): Promise<PgServer> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  // As root the directory must be one nobody can reach: /tmp is world-traversable, TMPDIR may not be.
  const dir = mkdtempSync(join(asRoot ? "/tmp" : tmpdir(), "palyra-pg-"));
  if (asRoot) chownSync(dir, NOBODY, NOBODY);
  const data = join(dir, "data");
  const log = join(dir, "postgres.log");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, LC_ALL: "C", LANG: "C" };
  const exec = (tool: string, args: string[]) => {
    const [file, argv] = asRoot
      ? [
          "setpriv",
          [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", join(bin, tool), ...args],
        ]
      : [join(bin, tool), args];
    return { file, argv: argv as string[], options: { cwd: dir, env } };
  };
  const runTool = async (tool: string, args: string[]) => {
    const { file, argv, options } = exec(tool, args);
    return run(file, argv, { ...options, timeout: READY_TIMEOUT_MS });
  };

  let stopped = false;
  const cleanupSync = () => {
    if (stopped) return;
    stopped = true;
    try {
      const { file, argv, options } = exec("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w"]);
      execFileSync(file, argv, { ...options, stdio: "ignore", timeout: 10_000 });
    } catch {
      // not running (or already gone): the directory still goes
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A run cut short by a signal does not fire "exit": stop the server, then die of the signal as before.
  const onSignal = (signal: NodeJS.Signals) => {
    cleanupSync();
    process.kill(process.pid, signal);
  };
  const hooks = () => {
    process.removeListener("exit", cleanupSync);
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
  };
  process.once("exit", cleanupSync);
  for (const signal of SIGNALS) process.once(signal, onSignal);

  try {
    const password = randomBytes(18).toString("base64url");
    const pwfile = join(dir, "pwfile");
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (asRoot) chownSync(pwfile, NOBODY, NOBODY);
    // --no-sync only skips initdb's own flush of the fresh cluster; the server itself runs fsync=on.
    await runTool("initdb", [
      "-D",
      data,
      "-U",
      ADMIN,
      `--pwfile=${pwfile}`,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ]);
    rmSync(pwfile);
    // Another process may take the free port before the server binds it: then try a fresh one.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      // Local socket connections are trusted, but the socket lives in our 0700 directory.
      const options = [
        "-c listen_addresses=127.0.0.1",
        `-c port=${port}`,
        `-c unix_socket_directories=${dir}`,
        "-c fsync=on",
        "-c max_connections=200",
        "-c shared_buffers=16MB",
      ].join(" ");
      try {
        await runTool("pg_ctl", ["start", "-D", data, "-l", log, "-w", "-t", "30", "-o", options]);
        break;
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
    const adminUrl = `postgresql://${ADMIN}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    await waitReady(adminUrl);
    return {
      port,
      adminUrl,
      async createDatabase(name = `t_${randomBytes(6).toString("hex")}`) {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
        const client = new pg.Client({ connectionString: adminUrl });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return `postgresql://${ADMIN}:${encodeURIComponent(password)}@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        if (stopped) return;
        hooks();
        try {
          // Immediate, not fast: a fast shutdown's checkpoint would fsync every test database (thousands
          // of files, seconds on a busy disk) only for the directory to be deleted right after.
          await runTool("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w"]);
        } finally {
          stopped = true;
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    const tail = existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-20).join("\n") : "";
    cleanupSync();
    hooks();
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${tail}`, { cause: err });
  }
}

/** Polls a real connection (TCP and password) until the server answers, with a deadline. */
async function waitReady(url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
