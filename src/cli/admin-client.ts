import { readFileSync } from "node:fs";
import { CommonError, defineErrorFamily, ExitCode } from "../common/errors.js";
import { StorageError } from "../common/storage-errors.js";
import { readAdminToken } from "../daemon/admin-token.js";
import { readDaemonInfo } from "../daemon/daemon-info.js";
import { resolveStateRoot, statePaths } from "../daemon/state-root.js";
import { type AdminHttpResponse, adminHttp } from "./admin-http-client.js";
import type { GatewayApi } from "./operator-client.js";

function readCaPem(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new AdminClientError(
      "unreachable",
      `cannot read the gateway CA at ${path}: ${(err as Error).message}`,
    );
  }
}

export class AdminClientError extends defineErrorFamily("admin", {
  unreachable: ExitCode.unreachable,
  unauthenticated: ExitCode.authentication,
  not_found: ExitCode.notFound,
  conflict: ExitCode.precondition,
  rejected: ExitCode.usage,
  rate_limited: ExitCode.denied,
  server: ExitCode.internal,
}) {}

/** Talks to the local daemon's admin API, found through daemon.json and admin.token in the state root. */
export class AdminClient implements GatewayApi {
  readonly #baseUrl: string;
  readonly #token: string;

  readonly #caPem: string | undefined;

  private constructor(baseUrl: string, token: string, caPem: string | undefined) {
    this.#baseUrl = baseUrl;
    this.#token = token;
    this.#caPem = caPem;
  }

  static fromStateRoot(flag: string | undefined): AdminClient {
    const paths = statePaths(resolveStateRoot(flag));
    const info = readDaemonInfo(paths.daemonInfo);
    if (!info)
      throw new AdminClientError(
        "unreachable",
        `no running daemon for ${paths.root} (start it with: palyra daemon)`,
      );
    const token = readAdminToken(paths.adminToken);
    if (!token)
      throw new AdminClientError("unauthenticated", `cannot read the admin token at ${paths.adminToken}`);
    // An https admin URL (a non-loopback bind) is verified against the gateway's own CA.
    const caPem = info.admin_url.startsWith("https:") ? readCaPem(paths.caCertificate) : undefined;
    return new AdminClient(info.admin_url, token.expose(), caPem);
  }

  /** `timeoutMs` must outlast whatever the daemon waits for (an invoke's deadline, a rotation). */
  async request<T>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    body?: unknown,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    // Serialised before the exchange: a body that cannot be (too deep) is not "cannot reach the daemon".
    const text = body === undefined ? undefined : JSON.stringify(body);
    let res: AdminHttpResponse;
    try {
      res = await adminHttp(new URL(path, this.#baseUrl), {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(text === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(text === undefined ? {} : { body: text }),
        timeoutMs: options.timeoutMs ?? 30_000,
        ...(this.#caPem ? { caPem: this.#caPem } : {}),
      });
    } catch (err) {
      throw new AdminClientError(
        "unreachable",
        `cannot reach the daemon at ${this.#baseUrl}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    let parsed: unknown;
    try {
      parsed = res.text ? JSON.parse(res.text) : {};
    } catch {
      throw new CommonError("internal", `the daemon answered ${res.status} with a body that is not JSON`);
    }
    if (res.status >= 200 && res.status < 300) return parsed as T;
    const message = (parsed as { error?: { message?: string } }).error?.message ?? `HTTP ${res.status}`;
    // The daemon's disk is full: the same error as a local write would give (exit 1, code no_space).
    if (res.status === 507) throw new StorageError("no_space", message);
    const code =
      res.status === 401
        ? "unauthenticated"
        : res.status === 404
          ? "not_found"
          : res.status === 409
            ? "conflict"
            : res.status === 429
              ? "rate_limited"
              : res.status >= 500
                ? "server"
                : "rejected";
    throw new AdminClientError(code, message);
  }
}
