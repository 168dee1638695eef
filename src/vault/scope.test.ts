import assert from "node:assert/strict";
import { test } from "node:test";
import { assertScopePattern, scopeAllowed } from "./entitlements.js";
import { assertKey, formatRef, parseRef } from "./ref.js";
import { formatScope, parseScope } from "./scope.js";

const long = (n: number, c = "a") => c.repeat(n);

test("scopes: good inputs parse to their parts and format back unchanged", () => {
  const good: [string, ReturnType<typeof parseScope>][] = [
    ["global", { kind: "global" }],
    ["principal:alice", { kind: "principal", principalId: "alice" }],
    ["principal:user:ops", { kind: "principal", principalId: "user:ops" }],
    ["channel:slack:acct-1", { kind: "channel", channelName: "slack", accountId: "acct-1" }],
    ["channel:slack:T01:U02", { kind: "channel", channelName: "slack", accountId: "T01:U02" }],
    ["skill:extractor", { kind: "skill", skillId: "extractor" }],
    ["principal:Zoë Ops", { kind: "principal", principalId: "Zoë Ops" }],
    [`principal:${long(256)}`, { kind: "principal", principalId: long(256) }],
    [`skill:${long(128, "é")}`, { kind: "skill", skillId: long(128, "é") }],
  ];
  for (const [raw, parsed] of good) {
    assert.deepEqual(parseScope(raw), parsed, raw);
    assert.equal(formatScope(parseScope(raw)), raw);
  }
});

test("scopes: bad inputs are refused with invalid_scope", () => {
  const bad: [unknown, RegExp][] = [
    ["", /a scope is global/],
    ["GLOBAL", /a scope is global/],
    ["Global", /a scope is global/],
    [" global", /a scope is global/],
    ["Principal:x", /a scope is global/],
    ["user:x", /a scope is global/],
    ["principal:", /principal id cannot be empty/],
    ["skill:", /skill id cannot be empty/],
    ["channel:slack", /channel:<name>:<account>/],
    ["channel::acct", /channel name cannot be empty/],
    ["channel:slack:", /channel account cannot be empty/],
    ["principal:a/b", /forbidden character/],
    ["principal:a\\b", /forbidden character/],
    ["principal:a\u0000b", /forbidden character/],
    ["principal:a\nb", /forbidden character/],
    ["principal:a\u007fb", /forbidden character/],
    ["principal:\ud800", /forbidden character/],
    ["principal: alice", /whitespace/],
    ["principal:alice ", /whitespace/],
    ["principal:e\u0301", /NFC/],
    [`principal:${long(257)}`, /257 bytes/],
    [`principal:${long(129, "é")}`, /258 bytes/],
    [`channel:${long(300)}:${long(300)}`, /at most/],
    [42, /a scope is a string/],
    [undefined, /a scope is a string/],
  ];
  for (const [raw, message] of bad)
    assert.throws(() => parseScope(raw), { code: "invalid_scope", message }, String(raw));
});

test("keys: [a-z0-9._-], 1 to 128 bytes", () => {
  for (const good of ["openai_api_key", "a", "a.b", "codex-e2e-secret", "0", long(128)])
    assert.equal(assertKey(good), good);
  for (const bad of ["", "OpenAI", "not valid", "a/b", " key", "key ", "ключ", long(129), "a\u0000", 7])
    assert.throws(() => assertKey(bad), { code: "invalid_key" }, String(bad));
});

test("refs split at the first slash and keep the canonical scope", () => {
  assert.deepEqual(parseRef("global/openai_api_key"), { scope: "global", key: "openai_api_key" });
  assert.deepEqual(parseRef("principal:user:ops/api_key"), { scope: "principal:user:ops", key: "api_key" });
  assert.deepEqual(parseRef("channel:slack:acct-1/bot_token"), {
    scope: "channel:slack:acct-1",
    key: "bot_token",
  });
  assert.equal(formatRef(parseRef("skill:x/token")), "skill:x/token");
  assert.throws(() => parseRef("global"), { code: "invalid_ref", message: /<scope>\/<key>/ });
  assert.throws(() => parseRef("global/a/b"), { code: "invalid_key" });
  assert.throws(() => parseRef("GLOBAL/key"), { code: "invalid_scope" });
  assert.throws(() => parseRef("global/"), { code: "invalid_key" });
  assert.throws(() => parseRef(`global/${long(5000)}`), { code: "invalid_ref", message: /too long/ });
});

test("entitlement patterns: deny by default, wildcards per kind and per channel", () => {
  const patterns = ["global", "principal:*", "channel:slack:*"].map(assertScopePattern);
  assert.ok(scopeAllowed(patterns, "global"));
  assert.ok(scopeAllowed(patterns, "principal:alice"));
  assert.ok(scopeAllowed(patterns, "channel:slack:acct-1"));
  assert.ok(!scopeAllowed(patterns, "channel:discord:acct-1"));
  assert.ok(!scopeAllowed(patterns, "channel:slackish:acct-1"));
  assert.ok(!scopeAllowed(patterns, "skill:x"));
  assert.ok(!scopeAllowed([], "global"));
  assert.ok(scopeAllowed(["*"], "skill:x"));
  assert.ok(scopeAllowed(["skill:extractor"], "skill:extractor"));
  assert.ok(!scopeAllowed(["skill:extractor"], "skill:extractor2"));
  for (const bad of ["glob*", "principal:a*", "channel:a:b:*", "*:x", "GLOBAL"])
    assert.throws(() => assertScopePattern(bad), { code: "invalid_scope" }, bad);
});
