import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { readFileLimited } from "../common/atomic-file.js";
import { limits } from "../common/limits.js";
import { assertScopePattern } from "../vault/entitlements.js";
import { DaemonError } from "./errors.js";

/**
 * Daemon configuration. Precedence: flags > PALYRA_* environment > palyra.toml > defaults. Every source
 * is validated by the same schema and unknown keys are rejected, so a typo never silently does nothing.
 */

const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/i, "a DNS name without wildcards");
const ipAddress = z.string().refine((v) => isIP(v) !== 0, "an IPv4 or IPv6 address");
const port = z.coerce.number().int().min(0).max(65535);
const bindHost = z.string().refine((v) => isIP(v) !== 0 || v === "localhost", "an IP address or localhost");

const listener = z.object({ host: bindHost, port }).strict();
const scopePattern = z.string().refine((v) => {
  try {
    assertScopePattern(v);
    return true;
  } catch {
    return false;
  }
}, "a vault scope or pattern: *, global, principal:*, channel:*, channel:<name>:*, skill:*, or one scope");
/** QUIC on UDP (may share the node port's number: a different protocol). */
const quicListener = z.object({ host: bindHost, port, enabled: z.boolean() }).strict();
/** Empty: the embedded SQLite database in the state root. A postgresql:// URL: the cluster's shared database. */
const databaseUrl = z
  .string()
  .max(2048)
  .refine((v) => v === "" || /^postgres(ql)?:\/\/[^\s]+$/.test(v), "empty, or a postgresql:// URL");
const fields = {
  database: z.object({ url: databaseUrl }).strict(),
  admin: listener,
  node: listener,
  quic: quicListener,
  server_names: z.array(hostname).max(32),
  server_ips: z.array(ipAddress).max(32),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  allow_non_loopback: z.boolean(),
  /** Life of the client certificates issued at pairing and renewal (devices renew at 2/3 of it). */
  client_certificate_lifetime_minutes: z.coerce
    .number()
    .int()
    .min(limits.clientCertificateMinLifetimeMs / 60_000)
    .max(limits.clientCertificateMaxLifetimeMs / 60_000),
  /** Vault scopes the admin API may read and change (deny by default; skill scopes are in-process). */
  vault_api_scopes: z.array(scopePattern).max(64),
  /** Days after its certificate expired that a device (not revoked) may still recover with its
   *  identity key; 0 disables recovery. */
  certificate_recovery_days: z.coerce.number().int().min(0).max(limits.certificateRecoveryMaxDays),
  /** BeginPairing per minute from one address (IPv6 by /64), and from everywhere. Raise both for a
   *  mass enrolment (thousands of machines pairing from a few NAT addresses). */
  pairing_begins_per_address_per_minute: z.coerce.number().int().min(1).max(1_000_000),
  pairing_begins_per_minute: z.coerce.number().int().min(1).max(1_000_000),
  /** Days the audit log keeps an entry; 0 keeps every entry forever. */
  audit_retention_days: z.coerce.number().int().min(0).max(limits.auditRetentionMaxDays),
};
export const configSchema = z.object(fields).strict();
/** A single source may set any subset, including part of a listener. */
const partialSchema = z
  .object({
    ...fields,
    database: fields.database.partial(),
    admin: listener.partial(),
    node: listener.partial(),
    quic: quicListener.partial(),
  })
  .partial()
  .strict();

export type DaemonConfig = z.infer<typeof configSchema>;

export const DEFAULT_CONFIG: DaemonConfig = {
  database: { url: "" },
  admin: { host: "127.0.0.1", port: 7142 },
  node: { host: "127.0.0.1", port: 7444 },
  quic: { host: "127.0.0.1", port: 7444, enabled: true },
  server_names: [],
  server_ips: [],
  log_level: "info",
  allow_non_loopback: false,
  client_certificate_lifetime_minutes: limits.clientCertificateDefaultLifetimeMs / 60_000,
  vault_api_scopes: ["global", "principal:*", "channel:*"],
  certificate_recovery_days: limits.certificateRecoveryDefaultDays,
  pairing_begins_per_address_per_minute: limits.beginPerAddressPerWindow,
  pairing_begins_per_minute: limits.beginGlobalPerWindow,
  audit_retention_days: limits.auditRetentionDefaultDays,
};

type PartialConfig = {
  [K in keyof DaemonConfig]?: DaemonConfig[K] extends object
    ? Partial<DaemonConfig[K]> | DaemonConfig[K]
    : DaemonConfig[K];
};

/** Reads palyra.toml if it exists. */
export function readConfigFile(path: string): PartialConfig {
  if (!existsSync(path)) return {};
  let parsed: unknown;
  try {
    parsed = parseToml(readFileLimited(path, limits.maxConfigBytes).toString("utf8"));
  } catch (err) {
    throw new DaemonError("invalid_config", `${path}: ${(err as Error).message.split("\n")[0]}`, {
      cause: err,
    });
  }
  return checkPartial(parsed, path);
}

const ENV_KEYS: Record<string, (v: string) => PartialConfig> = {
  PALYRA_DATABASE_URL: (v) => ({ database: { url: v } }),
  PALYRA_ADMIN_HOST: (v) => ({ admin: { host: v } }),
  PALYRA_ADMIN_PORT: (v) => ({ admin: { port: Number(v) } }),
  PALYRA_NODE_HOST: (v) => ({ node: { host: v } }),
  PALYRA_NODE_PORT: (v) => ({ node: { port: Number(v) } }),
  PALYRA_QUIC_HOST: (v) => ({ quic: { host: v } }),
  PALYRA_QUIC_PORT: (v) => ({ quic: { port: Number(v) } }),
  PALYRA_QUIC_ENABLED: (v) => ({ quic: { enabled: v === "1" || v === "true" } }),
  PALYRA_SERVER_NAMES: (v) => ({ server_names: splitList(v) }),
  PALYRA_SERVER_IPS: (v) => ({ server_ips: splitList(v) }),
  PALYRA_LOG_LEVEL: (v) => ({ log_level: v as DaemonConfig["log_level"] }),
  PALYRA_ALLOW_NON_LOOPBACK: (v) => ({ allow_non_loopback: v === "1" || v === "true" }),
  PALYRA_CLIENT_CERTIFICATE_LIFETIME_MINUTES: (v) => ({ client_certificate_lifetime_minutes: Number(v) }),
  PALYRA_VAULT_API_SCOPES: (v) => ({ vault_api_scopes: splitList(v) }),
  PALYRA_CERTIFICATE_RECOVERY_DAYS: (v) => ({ certificate_recovery_days: Number(v) }),
  PALYRA_PAIRING_BEGINS_PER_ADDRESS_PER_MINUTE: (v) => ({ pairing_begins_per_address_per_minute: Number(v) }),
  PALYRA_PAIRING_BEGINS_PER_MINUTE: (v) => ({ pairing_begins_per_minute: Number(v) }),
  PALYRA_AUDIT_RETENTION_DAYS: (v) => ({ audit_retention_days: Number(v) }),
};

function splitList(v: string): string[] {
  return v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

export function configFromEnv(env: NodeJS.ProcessEnv): PartialConfig {
  let out: PartialConfig = {};
  for (const [name, map] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value !== undefined && value !== "") out = merge(out, map(value));
  }
  return checkPartial(out, "environment");
}

function checkPartial(value: unknown, source: string): PartialConfig {
  const result = partialSchema.safeParse(value);
  if (!result.success) throw new DaemonError("invalid_config", `${source}: ${formatIssues(result.error)}`);
  return result.data as PartialConfig;
}

function merge(base: PartialConfig, over: PartialConfig): PartialConfig {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && prev && typeof prev === "object"
        ? { ...prev, ...v }
        : v;
  }
  return out as PartialConfig;
}

/** Flattens a (partial) config into dotted keys: `admin.host` -> value. Arrays stay whole. */
export function flattenConfig(config: PartialConfig | DaemonConfig, prefix = ""): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    if (v && typeof v === "object" && !Array.isArray(v))
      for (const [kk, vv] of flattenConfig(v as PartialConfig, `${prefix}${k}.`)) out.set(kk, vv);
    else out.set(`${prefix}${k}`, v);
  }
  return out;
}

/** Where each effective value comes from: the last named source (lowest precedence first) that set it. */
export function configSources(sources: ReadonlyArray<readonly [string, PartialConfig]>): Map<string, string> {
  const where = new Map<string, string>([...flattenConfig(DEFAULT_CONFIG).keys()].map((k) => [k, "default"]));
  for (const [name, partial] of sources)
    for (const key of flattenConfig(partial).keys()) where.set(key, name);
  return where;
}

/** A database URL fit to print: the password replaced (it belongs in PGPASSWORD or ~/.pgpass anyway). */
export function redactDatabaseUrl(url: string): string {
  if (url === "") return url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/** Merges the sources (lowest precedence first) over the defaults and validates the result. */
export function resolveConfig(...sources: PartialConfig[]): DaemonConfig {
  const merged = sources.reduce(merge, DEFAULT_CONFIG as PartialConfig);
  const result = configSchema.safeParse(merged);
  if (!result.success) throw new DaemonError("invalid_config", formatIssues(result.error));
  const config = result.data;
  if (config.pairing_begins_per_address_per_minute > config.pairing_begins_per_minute)
    throw new DaemonError(
      "invalid_config",
      "pairing_begins_per_address_per_minute must not exceed pairing_begins_per_minute",
    );
  const loopback = isLoopbackHost;
  for (const [name, bind] of [
    ["admin", config.admin],
    ["node", config.node],
    ...(config.quic.enabled ? [["quic", config.quic] as const] : []),
  ] as const)
    if (!loopback(bind.host) && !config.allow_non_loopback)
      throw new DaemonError(
        "unsafe_bind",
        `${name} would listen on ${bind.host}, which is not loopback; pass --allow-non-loopback to confirm`,
      );
  return config;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
}
