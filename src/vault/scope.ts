import { VaultError } from "./errors.js";

/**
 * Vault scopes (DESIGN section 8): `global`, `principal:<id>`, `channel:<name>:<account>`, `skill:<id>`.
 * One strict grammar, checked without trimming or case folding, so one scope has exactly one spelling:
 * each segment is 1-256 UTF-8 bytes in Unicode NFC, with no NUL, `/`, `\`, other control characters,
 * or whitespace at either end. A channel name holds no `:` (the first `:` ends it); principal ids and
 * channel accounts may contain `:`.
 */

export type VaultScope =
  | { kind: "global" }
  | { kind: "principal"; principalId: string }
  | { kind: "channel"; channelName: string; accountId: string }
  | { kind: "skill"; skillId: string };

export const MAX_SCOPE_SEGMENT_BYTES = 256;
/** Longest scope string: the longest prefix and two full segments. Checked before parsing. */
export const MAX_SCOPE_BYTES = "channel:".length + 2 * MAX_SCOPE_SEGMENT_BYTES + 1;

const SHAPES = "global, principal:<id>, channel:<name>:<account> or skill:<id>";
// C0 controls, DEL, C1 controls, and (in a `u` regex, only unpaired) surrogates; `/` and `\` would
// make refs and paths ambiguous.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff/\\]/u;

function segment(label: string, value: string): string {
  if (value.length === 0) throw new VaultError("invalid_scope", `${label} cannot be empty`);
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_SCOPE_SEGMENT_BYTES)
    throw new VaultError(
      "invalid_scope",
      `${label} is ${bytes} bytes; the limit is ${MAX_SCOPE_SEGMENT_BYTES}`,
    );
  if (FORBIDDEN.test(value))
    throw new VaultError(
      "invalid_scope",
      `${label} contains a forbidden character (NUL, '/', '\\' or another control character)`,
    );
  if (value.trim() !== value)
    throw new VaultError("invalid_scope", `${label} starts or ends with whitespace`);
  if (value.normalize("NFC") !== value)
    throw new VaultError("invalid_scope", `${label} is not in Unicode NFC form`);
  return value;
}

export function parseScope(raw: unknown): VaultScope {
  if (typeof raw !== "string") throw new VaultError("invalid_scope", "a scope is a string");
  if (Buffer.byteLength(raw, "utf8") > MAX_SCOPE_BYTES)
    throw new VaultError("invalid_scope", `a scope is at most ${MAX_SCOPE_BYTES} bytes`);
  if (raw === "global") return { kind: "global" };
  if (raw.startsWith("principal:"))
    return { kind: "principal", principalId: segment("principal id", raw.slice("principal:".length)) };
  if (raw.startsWith("skill:"))
    return { kind: "skill", skillId: segment("skill id", raw.slice("skill:".length)) };
  if (raw.startsWith("channel:")) {
    const rest = raw.slice("channel:".length);
    const colon = rest.indexOf(":");
    if (colon < 0) throw new VaultError("invalid_scope", "a channel scope is channel:<name>:<account>");
    return {
      kind: "channel",
      channelName: segment("channel name", rest.slice(0, colon)),
      accountId: segment("channel account", rest.slice(colon + 1)),
    };
  }
  throw new VaultError("invalid_scope", `a scope is ${SHAPES}`);
}

/** The one spelling of a scope: `parseScope(formatScope(s))` equals `s` for every valid scope. */
export function formatScope(scope: VaultScope): string {
  switch (scope.kind) {
    case "global":
      return "global";
    case "principal":
      return `principal:${scope.principalId}`;
    case "channel":
      return `channel:${scope.channelName}:${scope.accountId}`;
    case "skill":
      return `skill:${scope.skillId}`;
  }
}

/** Validates a scope string and returns it unchanged (the canonical form is the only accepted form). */
export function assertScope(raw: unknown): string {
  return formatScope(parseScope(raw));
}
