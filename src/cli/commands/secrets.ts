import { existsSync } from "node:fs";
import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { limits } from "../../common/limits.js";
import { REDACTED } from "../../common/redaction.js";
import { noSpaceError } from "../../common/storage-errors.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { BACKEND_KINDS } from "../../vault/backends/blob-backend.js";
import { VaultError } from "../../vault/errors.js";
import { migrateVault } from "../../vault/migrate.js";
import { openVault } from "../../vault/open-vault.js";
import { parseRef } from "../../vault/ref.js";
import { assertScope } from "../../vault/scope.js";
import { revealedValue, type Vault } from "../../vault/vault.js";
import { GATEWAY_OPTION_HELP, gatewayClient } from "../gateway-client.js";
import { resolveGatewayTarget } from "../gateway-target.js";
import { auditLocally } from "../local-audit.js";
import type { GatewayApi } from "../operator-client.js";
import { printResult } from "../output.js";
import { readSecretInput } from "../secret-input.js";
import { table } from "../table.js";

interface Common {
  stateRoot?: string;
  gateway?: string;
  json?: boolean;
}

/**
 * The gateway to ask instead of opening a vault here: when one is named (--gateway, PALYRA_GATEWAY), or
 * when this state root has no vault but a paired operator device (gateway-target.ts).
 */
async function remoteGateway(flags: Common): Promise<GatewayApi | undefined> {
  const target = await resolveGatewayTarget(flags);
  if (target.kind !== "remote") return undefined;
  const named = flags.gateway !== undefined || Boolean(process.env.PALYRA_GATEWAY);
  if (!named && existsSync(statePaths(target.stateRoot).vault)) return undefined;
  return gatewayClient(flags);
}

const refPath = (ref: { scope: string; key: string }) =>
  `/v1/secrets/${encodeURIComponent(`${ref.scope}/${ref.key}`)}`;

const warn = (message: string) => process.stderr.write(`warning: ${message}\n`);

/** A backend name given by the operator, checked before anything opens: a typo is bad input (exit 2). */
export function assertBackendName(name: string, source: string, allowAuto = false): void {
  const known: readonly string[] = allowAuto ? ["auto", ...BACKEND_KINDS] : BACKEND_KINDS;
  if (!known.includes(name))
    throw new CommonError(
      "invalid_input",
      `${source}unknown vault backend '${name}' (one of: ${known.join(", ")})`,
    );
}

/** PALYRA_VAULT_BACKEND, when set, must name a backend (or auto): the daemon and `secrets` read it. */
export function assertVaultBackendEnv(env: NodeJS.ProcessEnv = process.env): void {
  const value = env.PALYRA_VAULT_BACKEND;
  if (value !== undefined && value !== "") assertBackendName(value, "PALYRA_VAULT_BACKEND: ", true);
}

/**
 * Opens the vault of a state root for one command; the daemon may have it open too (that is safe). A
 * full disk on the way is reported as such, naming the vault (or the audit database) it was writing.
 */
async function withVault<T>(
  flags: Common,
  run: (vault: Vault, paths: ReturnType<typeof statePaths>) => Promise<T>,
  options: { ignoreBackendOverride?: boolean } = {},
): Promise<T> {
  const paths = statePaths(resolveStateRoot(flags.stateRoot));
  try {
    const vault = await openVault(paths.vault, { onWarning: warn, ...options });
    try {
      return await run(vault, paths);
    } finally {
      vault.close();
    }
  } catch (err) {
    throw noSpaceError(err, paths.vault) ?? err;
  }
}

/** auditLocally; a full disk there names the database (withVault passes that error on as it is). */
function audit(paths: ReturnType<typeof statePaths>, entry: Parameters<typeof auditLocally>[1]): void {
  try {
    auditLocally(paths, entry);
  } catch (err) {
    throw noSpaceError(err, paths.database) ?? err;
  }
}

export function registerSecretsCommands(program: Command): void {
  const secrets = program
    .command("secrets")
    .description("scoped secrets in the vault (OS keyring when there is one); refs are <scope>/<key>")
    .addHelpText(
      "after",
      "\nScopes: global | principal:<id> | channel:<name>:<account> | skill:<id>\nKeys: 1-128 of [a-z0-9._-]. Example ref: global/openai_api_key\n",
    );
  const withCommon = (cmd: Command) =>
    cmd
      .option("--state-root <dir>", "state directory (holds the vault, or this paired device)")
      .option("--gateway <host:port>", GATEWAY_OPTION_HELP)
      .option("--json", "JSON output");

  withCommon(
    secrets
      .command("set <ref>")
      .description("store a secret (the value never goes on the command line)")
      .option(
        "--value-stdin",
        "read the value from stdin (bytes as given; typed with echo off on a terminal)",
      )
      .option("--value-file <path>", "read the value from a file (any file type; at most 64 KiB)")
      .option("--allow-empty", "store an empty value (refused otherwise)"),
  ).action(
    async (
      raw: string,
      flags: Common & { valueStdin?: boolean; valueFile?: string; allowEmpty?: boolean },
    ) => {
      const ref = parseRef(raw);
      const value = await readSecretInput(flags, limits.vaultMaxValueBytes, `${ref.scope}/${ref.key}`);
      try {
        if (value.length === 0 && !flags.allowEmpty)
          throw new CommonError(
            "invalid_input",
            "the value is empty (pass --allow-empty to store an empty secret)",
          );
        const remote = await remoteGateway(flags);
        if (remote) {
          const metadata = await remote.request<Record<string, unknown>>("PUT", refPath(ref), {
            value_base64: value.toString("base64"),
            ...(flags.allowEmpty ? { allow_empty: true } : {}),
          });
          return printResult(metadata, { json: flags.json });
        }
        await withVault(flags, async (vault, paths) => {
          const metadata = await vault.put(ref.scope, ref.key, value);
          audit(paths, { kind: "secret.set", detail: { ref: metadata.ref, size: metadata.size } });
          printResult({ ...metadata }, { json: flags.json });
        });
      } finally {
        value.fill(0);
      }
    },
  );

  withCommon(
    secrets
      .command("get <ref>")
      .description("show a secret's metadata; --reveal prints the value itself (audited)")
      .option("--reveal", "print the value (raw bytes; with --json as value_base64 and value_utf8)"),
  ).action(async (raw: string, flags: Common & { reveal?: boolean }) => {
    const ref = parseRef(raw);
    const remote = await remoteGateway(flags);
    if (remote) {
      if (!flags.reveal) {
        const metadata = await remote.request<Record<string, unknown>>("GET", refPath(ref));
        return printResult({ ...metadata, value: `${REDACTED} (use --reveal)` }, { json: flags.json });
      }
      // The gateway records the reveal (actor: this device) before it sends the value.
      const revealed = await remote.request<Record<string, unknown> & { value_base64: string }>(
        "POST",
        `${refPath(ref)}/reveal`,
        {},
      );
      if (flags.json) return printResult(revealed, { json: true });
      const value = Buffer.from(revealed.value_base64, "base64");
      if (process.stdout.isTTY) warn("printing a secret to the terminal");
      process.stdout.write(value);
      value.fill(0);
      return;
    }
    await withVault(flags, async (vault, paths) => {
      const metadata = vault.metadata(ref.scope, ref.key);
      if (!flags.reveal)
        return printResult({ ...metadata, value: `${REDACTED} (use --reveal)` }, { json: flags.json });
      const value = (await vault.get(ref.scope, ref.key)).expose();
      try {
        // The record comes first: if it cannot be written, nothing is revealed.
        audit(paths, { kind: "secret.revealed", detail: { ref: metadata.ref } });
        if (flags.json) {
          printResult({ ...metadata, ...revealedValue(value) }, { json: true });
        } else {
          if (process.stdout.isTTY) warn("printing a secret to the terminal");
          process.stdout.write(value);
        }
      } finally {
        value.fill(0);
      }
    });
  });

  withCommon(
    secrets
      .command("list")
      .description("secrets' metadata (never values)")
      .option("--scope <scope>", "only this scope"),
  ).action(async (flags: Common & { scope?: string }) => {
    const scope = flags.scope === undefined ? undefined : assertScope(flags.scope);
    const show = (list: readonly object[]) => {
      if (flags.json) return printResult({ secrets: list }, { json: true });
      if (list.length === 0) return void process.stdout.write("no secrets\n");
      process.stdout.write(
        table(list as unknown as Record<string, unknown>[], ["ref", "size", "backend", "updated_at"]),
      );
    };
    const remote = await remoteGateway(flags);
    if (remote) {
      const query = scope === undefined ? "" : `?scope=${encodeURIComponent(scope)}`;
      return show((await remote.request<{ secrets: object[] }>("GET", `/v1/secrets${query}`)).secrets);
    }
    await withVault(flags, async (vault) => show(vault.list(scope === undefined ? {} : { scope })));
  });

  withCommon(secrets.command("delete <ref>").description("delete a secret")).action(
    async (raw: string, flags: Common) => {
      const ref = parseRef(raw);
      const remote = await remoteGateway(flags);
      if (remote) return printResult(await remote.request("DELETE", refPath(ref)), { json: flags.json });
      await withVault(flags, async (vault, paths) => {
        if (!(await vault.delete(ref.scope, ref.key)))
          throw new VaultError("not_found", `no secret ${ref.scope}/${ref.key}`);
        audit(paths, { kind: "secret.deleted", detail: { ref: `${ref.scope}/${ref.key}` } });
        printResult({ ref: `${ref.scope}/${ref.key}`, deleted: true }, { json: flags.json });
      });
    },
  );

  withCommon(
    secrets.command("backend").description("where the vault keeps secrets and how well they are protected"),
  ).action(async (flags: Common) => {
    const remote = await remoteGateway(flags);
    if (remote) return printResult(await remote.request("GET", "/v1/vault"), { json: flags.json });
    await withVault(flags, async (vault) => {
      const description = vault.describe();
      if (description.weak && !flags.json) warn(description.detail);
      printResult({ ...description }, { json: flags.json });
    });
  });

  withCommon(
    secrets
      .command("migrate")
      .description("move every secret to another backend (safe to interrupt and run again)")
      .requiredOption("--to <kind>", `target backend: ${BACKEND_KINDS.join(" | ")}`),
  ).action(async (flags: Common & { to: string }) => {
    assertBackendName(flags.to, "");
    await withVault(
      flags,
      async (vault, paths) => {
        const report = await migrateVault(vault, flags.to, (p) => {
          if (process.stderr.isTTY) process.stderr.write(`\rmoving secrets: ${p.moved}/${p.total}\x1b[K`);
        });
        if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
        audit(paths, { kind: "vault.migrated", detail: { to: report.to, moved: report.moved } });
        const description = vault.describe();
        if (description.weak && !flags.json) warn(description.detail);
        printResult(flags.json ? { ...report } : { ...report, from: report.from.join(", ") || "-" }, {
          json: flags.json,
        });
      },
      { ignoreBackendOverride: true },
    );
  });
}
