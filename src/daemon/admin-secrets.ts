import { z } from "zod";
import type { AuditEntry } from "../common/audit.js";
import { CommonError } from "../common/errors.js";
import type { SlidingWindowLimiter } from "../common/rate-limiter.js";
import { noSpaceError } from "../common/storage-errors.js";
import { assertScopeAllowed, scopeAllowed } from "../vault/entitlements.js";
import { VaultError } from "../vault/errors.js";
import { parseRef } from "../vault/ref.js";
import { assertScope } from "../vault/scope.js";
import type { SecretsVault } from "../vault/secrets-vault.js";
import { revealedValue } from "../vault/vault.js";
import type { AdminCall, AdminReply } from "./admin-api.js";
import { DaemonError } from "./errors.js";

/**
 * The vault over the admin API. Scope entitlement is enforced here, at the edge: the caller sees and
 * changes only scopes its patterns allow (config `vault_api_scopes`). Listings carry metadata only; a
 * value leaves only through the explicit reveal endpoint, which is rate limited and audited before the
 * value is sent. Refs are one URL path segment, percent-encoded (`global%2Fopenai_api_key`).
 *
 *   GET    /v1/vault                      backend and protection
 *   GET    /v1/secrets[?scope=S]          metadata
 *   GET    /v1/secrets/{ref}              metadata
 *   PUT    /v1/secrets/{ref}              {value} or {value_base64}, and allow_empty to store nothing
 *   DELETE /v1/secrets/{ref}
 *   POST   /v1/secrets/{ref}/reveal       {reason?} -> value_base64, value_utf8
 */

export interface SecretsApiDeps {
  /** The open vault; throws (with the reason) when the daemon could not open it. */
  vault(): SecretsVault;
  scopes: readonly string[];
  audit(entry: AuditEntry): Promise<unknown>;
  reveals: SlidingWindowLimiter;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const putBody = z
  .object({
    value: z.string().optional(),
    value_base64: z.string().regex(BASE64).optional(),
    allow_empty: z.boolean().optional(),
  })
  .strict()
  .refine((b) => (b.value === undefined) !== (b.value_base64 === undefined), "give value or value_base64");
const revealBody = z.object({ reason: z.string().max(512).optional() }).strict();

/** A UTF-16 surrogate without its pair (a well-formed pair is one code point under the u flag). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Room for a value at its limit in base64, in JSON. */
const MAX_PUT_BODY_BYTES = 128 * 1024;

export async function handleSecretsApi(
  call: AdminCall,
  reply: AdminReply,
  deps: SecretsApiDeps,
  actor: string,
): Promise<boolean> {
  const url = call.url;
  const path = url.pathname;
  if (path === "/v1/vault" && call.method === "GET") {
    // Counts cover only the scopes this caller may see.
    const vault = deps.vault();
    const description = await vault.describe();
    const visible = (await vault.list()).filter((m) => scopeAllowed(deps.scopes, m.scope));
    reply(200, {
      ...description,
      secrets: visible.length,
      pending_migration: visible.filter((m) => m.backend !== description.backend).length,
    });
    return true;
  }
  if (path === "/v1/secrets" && call.method === "GET") {
    const raw = url.searchParams.get("scope");
    const vault = deps.vault();
    if (raw !== null) {
      const scope = assertScope(raw);
      assertScopeAllowed(deps.scopes, scope, actor);
      reply(200, { secrets: await vault.list({ scope }) });
    } else
      reply(200, {
        secrets: (await vault.list()).filter((m) => scopeAllowed(deps.scopes, m.scope)),
      });
    return true;
  }
  const match = /^\/v1\/secrets\/([^/]+)(?:\/(reveal))?$/.exec(path);
  if (!match) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(match[1]!);
  } catch {
    throw new VaultError("invalid_ref", "the secret ref in the URL is not valid percent-encoding");
  }
  const ref = parseRef(decoded);
  const name = `${ref.scope}/${ref.key}`;
  assertScopeAllowed(deps.scopes, ref.scope, actor);
  const vault = deps.vault();

  if (match[2] === "reveal" && call.method === "POST") {
    const body = revealBody.parse(await call.body());
    if (!deps.reveals.take(actor)) throw new DaemonError("rate_limited", "too many reveals; wait a minute");
    const metadata = await vault.metadata(ref.scope, ref.key);
    const value = (await vault.get(ref.scope, ref.key)).expose();
    try {
      // Recorded before the value leaves: an unrecorded reveal never happens.
      await deps.audit({
        kind: "secret.revealed",
        actor,
        detail: { ref: name, reason: body.reason ?? null },
      });
      reply(200, { ...metadata, ...revealedValue(value) });
    } finally {
      value.fill(0);
    }
    return true;
  }
  if (match[2] !== undefined) return false;
  if (call.method === "GET") {
    reply(200, await vault.metadata(ref.scope, ref.key));
    return true;
  }
  if (call.method === "PUT") {
    const body = putBody.parse(await call.body(MAX_PUT_BODY_BYTES));
    // UTF-8 of a lone surrogate (an escape like "\ud800" in the JSON) would silently become U+FFFD.
    if (body.value !== undefined && LONE_SURROGATE.test(body.value))
      throw new CommonError(
        "invalid_input",
        "value is not valid Unicode text (a lone surrogate); send bytes as value_base64",
      );
    const value =
      body.value_base64 !== undefined
        ? Buffer.from(body.value_base64, "base64")
        : Buffer.from(body.value ?? "", "utf8");
    try {
      if (value.length === 0 && !body.allow_empty)
        throw new CommonError(
          "invalid_input",
          "the value is empty (set allow_empty to store an empty secret)",
        );
      const existed = await vault.has(ref.scope, ref.key);
      const metadata = await vault.put(ref.scope, ref.key, value).catch(async (err: unknown) => {
        throw noSpaceError(err, (await vault.describe()).path) ?? err;
      });
      await deps.audit({
        kind: "secret.set",
        actor,
        detail: { ref: name, size: metadata.size, created: !existed },
      });
      reply(existed ? 200 : 201, metadata);
    } finally {
      value.fill(0);
    }
    return true;
  }
  if (call.method === "DELETE") {
    if (!(await vault.delete(ref.scope, ref.key))) throw new VaultError("not_found", `no secret ${name}`);
    await deps.audit({ kind: "secret.deleted", actor, detail: { ref: name } });
    reply(200, { ref: name, deleted: true });
    return true;
  }
  return false;
}
