import { VaultError } from "./errors.js";
import { assertScope } from "./scope.js";

/**
 * Which scopes a caller of the daemon's API may touch. A pattern is `*` (every scope), a scope kind with
 * a wildcard (`principal:*`, `channel:*`, `skill:*`), one channel's accounts (`channel:slack:*`), or
 * one exact scope. Deny by default: no pattern, no access. `skill:` scopes belong to in-process skills
 * and are not in the daemon's default list.
 */

const KIND_WILDCARD = /^(principal|channel|skill):\*$/;

export function assertScopePattern(raw: string): string {
  if (raw === "*" || KIND_WILDCARD.test(raw)) return raw;
  if (raw.startsWith("channel:") && raw.endsWith(":*")) {
    assertScope(`${raw.slice(0, -2)}:x`);
    if (raw.slice("channel:".length, -2).includes(":"))
      throw new VaultError("invalid_scope", `'${raw}': a channel pattern is channel:<name>:*`);
    return raw;
  }
  if (raw.endsWith("*"))
    throw new VaultError(
      "invalid_scope",
      `'${raw}': a wildcard stands alone after a kind (principal:*) or a channel name`,
    );
  return assertScope(raw);
}

export function scopeAllowed(patterns: readonly string[], scope: string): boolean {
  return patterns.some((pattern) => {
    if (pattern === "*" || pattern === scope) return true;
    if (!pattern.endsWith("*")) return false;
    const prefix = pattern.slice(0, -1);
    return scope.startsWith(prefix) && scope.length > prefix.length;
  });
}

export function assertScopeAllowed(patterns: readonly string[], scope: string, actor: string): void {
  if (!scopeAllowed(patterns, scope))
    throw new VaultError("scope_denied", `${actor} is not entitled to the scope ${scope}`);
}
