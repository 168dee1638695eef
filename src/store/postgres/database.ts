import pg from "pg";
import { StoreError } from "../errors.js";

/** What repositories run SQL on: the pool (one statement, autocommit) or a transaction's client. */
export interface Sql {
  rows<R>(text: string, values?: readonly unknown[]): Promise<R[]>;
  /** Rows affected (or returned). */
  execute(text: string, values?: readonly unknown[]): Promise<number>;
}

/** A transaction in progress; `afterCommit` work runs only once COMMIT succeeded. */
export interface Tx extends Sql {
  afterCommit(fn: () => void): void;
}

/** Integer milliseconds and counts come back as BIGINT, which pg returns as strings unless told. */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`BIGINT ${value} is beyond a safe integer`);
  return n;
});

/** The URL for messages: the password (in the authority or as a parameter) removed. */
export function redactUrl(url: string): string {
  const parsed = parseUrl(url);
  parsed.password = "";
  for (const key of [...parsed.searchParams.keys()])
    if (/password/i.test(key)) parsed.searchParams.set(key, "redacted");
  return parsed.toString();
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Never echo the URL (or keep the parse error as cause: it carries the input, password and all).
    throw new StoreError("open_failed", "the database URL is not a valid postgresql:// URL");
  }
  if (parsed.protocol !== "postgresql:" && parsed.protocol !== "postgres:")
    throw new StoreError(
      "open_failed",
      `the database URL must start with postgresql:// (not ${parsed.protocol}//)`,
    );
  return parsed;
}

/** Connection settings shared by the pool and the signal listener; the timeouts keep a dead database
 *  or a stuck lock from hanging a gateway forever. The URL's own parameters override them. */
export function clientConfig(url: string): pg.ClientConfig {
  parseUrl(url);
  return {
    connectionString: url,
    types,
    application_name: "palyra",
    connectionTimeoutMillis: 10_000,
    statement_timeout: 30_000,
    idle_in_transaction_session_timeout: 60_000,
    // TCP keepalive after 10 s idle: a listener on a dead connection notices within a minute, not hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

const UNREACHABLE =
  /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)$/;

/**
 * Any driver error as a StoreError: what failed, where (URL without password) and the server's own
 * words. The password is scrubbed even from those, should a server or driver ever echo it.
 */
export function storeError(err: unknown, location: string, secret?: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { message?: string; code?: string };
  let detail = e.message ?? String(err);
  if (secret) detail = detail.split(secret).join("***");
  const code = e.code ?? "";
  if (code.startsWith("23") || code === "40001" || code === "40P01")
    return new StoreError("conflict", `the database refused a conflicting write: ${detail}`, { cause: err });
  if (
    UNREACHABLE.test(code) ||
    /^(08|28|3D|53|57P)/.test(code) ||
    /timeout|terminated|Connection ended/i.test(detail)
  )
    return new StoreError("unavailable", `the database at ${location} is unavailable: ${detail}`, {
      cause: err,
    });
  return new StoreError("query_failed", `a database operation at ${location} failed: ${detail}`, {
    cause: err,
  });
}

/** A pg Pool with a transaction helper and errors as StoreError. */
export class PgDatabase implements Sql {
  readonly pool: pg.Pool;
  readonly location: string;
  readonly #secret: string | undefined;

  constructor(url: string) {
    this.location = redactUrl(url);
    this.#secret = decodeURIComponent(new URL(url).password) || undefined;
    this.pool = new pg.Pool({ ...clientConfig(url), max: 10, idleTimeoutMillis: 30_000 });
    // An idle client whose connection dies emits here; without a listener it would crash the process.
    this.pool.on("error", () => {});
  }

  error(err: unknown): StoreError {
    return storeError(err, this.location, this.#secret);
  }

  async rows<R>(text: string, values: readonly unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query(text, values as unknown[])).rows as R[];
    } catch (err) {
      throw this.error(err);
    }
  }

  async execute(text: string, values: readonly unknown[] = []): Promise<number> {
    try {
      return (await this.pool.query(text, values as unknown[])).rowCount ?? 0;
    } catch (err) {
      throw this.error(err);
    }
  }

  /**
   * Runs `fn` in one transaction on one client (READ COMMITTED: compare-and-set statements name the
   * state they expect in their WHERE clause, and a row lock makes the loser re-check it). After COMMIT
   * the `afterCommit` work runs; on any error everything rolls back.
   */
  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.error(err);
    }
    const after: (() => void)[] = [];
    const tx: Tx = {
      rows: async <R>(text: string, values: readonly unknown[] = []) =>
        (await client.query(text, values as unknown[])).rows as R[],
      execute: async (text, values = []) => (await client.query(text, values as unknown[])).rowCount ?? 0,
      afterCommit: (f) => after.push(f),
    };
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await fn(tx);
      await client.query("COMMIT");
      for (const f of after) {
        try {
          f();
        } catch {
          // after-commit listeners never undo or fail a committed write
        }
      }
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch((rollbackErr: Error) => {
        // The connection is gone or confused: do not hand it to the next caller.
        broken = rollbackErr;
      });
      throw this.error(err);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
