import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { runCli, startDaemon, testEnv } from "./helpers/cli.js";

/**
 * The vault end to end: the CLI (beside a running daemon, on the same vault) and the daemon's admin
 * API, with one distinctive secret value that must never show up anywhere but the explicit reveals:
 * not in logs, listings, metadata, files, audit records or error messages.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-vault-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));
const SECRET = "pk-9Yq3-vault-grep-canary-5e1d";
const SECRET2 = "pk-second-canary-77aa";
const forms = (value: string) => [
  value,
  Buffer.from(value).toString("base64"),
  Buffer.from(value).toString("base64url"),
  Buffer.from(value).toString("hex"),
];

test("a full CLI and admin API round trip leaves no secret value in logs, listings, files or errors", async () => {
  const state = join(root, "state");
  const daemon = await startDaemon(state);
  const shown: string[] = []; // every output that must not contain the value
  const cli = async (args: string[], input?: string) => {
    const full = [...args, "--state-root", state];
    return runCli(full, testEnv(), 30_000, input);
  };
  try {
    const set = await cli(["secrets", "set", "global/openai_api_key", "--value-stdin", "--json"], SECRET);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout).size, SECRET.length);
    shown.push(set.stdout, set.stderr);

    const valueFile = join(root, "value.txt");
    writeFileSync(valueFile, SECRET2, { mode: 0o600 });
    const fromFile = await cli(["secrets", "set", "principal:ops/token", "--value-file", valueFile]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    shown.push(fromFile.stdout, fromFile.stderr);

    const redacted = await cli(["secrets", "get", "global/openai_api_key"]);
    assert.equal(redacted.code, 0);
    assert.match(redacted.stdout, /value\s+\[redacted\] \(use --reveal\)/);
    shown.push(redacted.stdout, redacted.stderr);

    const reveal = await cli(["secrets", "get", "global/openai_api_key", "--reveal"]);
    assert.equal(reveal.code, 0, reveal.stderr);
    assert.equal(reveal.stdout, SECRET, "--reveal prints exactly the stored bytes");
    shown.push(reveal.stderr);
    const revealJson = await cli(["secrets", "get", "principal:ops/token", "--reveal", "--json"]);
    assert.equal(JSON.parse(revealJson.stdout).value_utf8, SECRET2);
    assert.equal(JSON.parse(revealJson.stdout).value_base64, Buffer.from(SECRET2).toString("base64"));

    for (const args of [
      ["secrets", "list"],
      ["secrets", "list", "--json"],
      ["secrets", "list", "--scope", "principal:ops", "--json"],
      ["secrets", "backend", "--json"],
    ]) {
      const result = await cli(args);
      assert.equal(result.code, 0, result.stderr);
      shown.push(result.stdout, result.stderr);
    }
    const listed = JSON.parse((await cli(["secrets", "list", "--json"])).stdout).secrets;
    assert.deepEqual(
      listed.map((m: { ref: string }) => m.ref),
      ["global/openai_api_key", "principal:ops/token"],
    );

    // Errors: bad input, too large, missing; exit codes per DESIGN section 10.
    const errors: [string[], string | undefined, number, RegExp][] = [
      [["secrets", "set", "global/openai_api_key"], undefined, 2, /--value-stdin or --value-file/],
      [["secrets", "set", "Global/x", "--value-stdin"], SECRET, 2, /a scope is global/],
      [
        ["secrets", "set", "global/x", "--value-stdin"],
        `${SECRET}${"x".repeat(70_000)}`,
        2,
        /larger than 65536/,
      ],
      [["secrets", "get", "global/missing"], undefined, 8, /no secret global\/missing/],
      [["secrets", "delete", "global/missing"], undefined, 8, /no secret global\/missing/],
      [["secrets", "migrate", "--to", "tape"], undefined, 2, /unknown vault backend/],
    ];
    for (const [args, input, code, message] of errors) {
      const result = await cli(args, input);
      assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      shown.push(result.stdout, result.stderr);
    }

    // The daemon's admin API on the same vault, with the bearer token the CLI uses.
    const token = readFileSync(join(state, "admin.token"), "utf8").trim();
    const api = (method: string, path: string, body?: unknown, auth = true) =>
      fetch(new URL(path, daemon.summary.admin_url), {
        method,
        headers: {
          ...(auth ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const json = async (res: Response) => {
      const text = await res.text();
      return { status: res.status, body: JSON.parse(text), text };
    };
    const apiList = await json(await api("GET", "/v1/secrets"));
    assert.equal(apiList.status, 200);
    assert.deepEqual(
      apiList.body.secrets.map((m: { ref: string }) => m.ref),
      ["global/openai_api_key", "principal:ops/token"],
      "the daemon sees what the CLI wrote",
    );
    shown.push(apiList.text);
    assert.equal((await api("GET", "/v1/secrets", undefined, false)).status, 401);
    const putNew = await json(
      await api("PUT", `/v1/secrets/${encodeURIComponent("channel:slack:acct-1/bot_token")}`, {
        value: "xoxb-api",
      }),
    );
    assert.equal(putNew.status, 201);
    assert.equal(putNew.body.size, 8);
    const putAgain = await api("PUT", `/v1/secrets/${encodeURIComponent("channel:slack:acct-1/bot_token")}`, {
      value_base64: Buffer.from("xoxb-api-2").toString("base64"),
    });
    assert.equal(putAgain.status, 200);
    const denied = await json(
      await api("PUT", `/v1/secrets/${encodeURIComponent("skill:x/token")}`, { value: "v" }),
    );
    assert.equal(denied.status, 403, "skill scopes are not in the API's default entitlement");
    assert.equal(denied.body.error.code, "scope_denied");
    assert.equal((await api("GET", `/v1/secrets?scope=${encodeURIComponent("skill:x")}`)).status, 403);
    const bad = await json(
      await api("PUT", `/v1/secrets/${encodeURIComponent("global/Bad")}`, { value: "v" }),
    );
    assert.equal(bad.status, 400);
    const both = await json(
      await api("PUT", `/v1/secrets/${encodeURIComponent("global/k")}`, { value: "v", value_base64: "dg==" }),
    );
    assert.equal(both.status, 400);

    const revealed = await json(
      await api("POST", `/v1/secrets/${encodeURIComponent("global/openai_api_key")}/reveal`, {
        reason: "rotate upstream key",
      }),
    );
    assert.equal(revealed.status, 200);
    assert.equal(revealed.body.value_utf8, SECRET);
    const metadata = await json(
      await api("GET", `/v1/secrets/${encodeURIComponent("global/openai_api_key")}`),
    );
    assert.equal(metadata.status, 200);
    assert.equal(metadata.body.value_base64, undefined);
    shown.push(metadata.text);
    const vaultInfo = await json(await api("GET", "/v1/vault"));
    assert.equal(vaultInfo.body.backend, "encrypted-file");
    shown.push(vaultInfo.text);

    const removed = await api("DELETE", `/v1/secrets/${encodeURIComponent("global/openai_api_key")}`);
    assert.equal(removed.status, 200);
    const gone = await json(
      await api("DELETE", `/v1/secrets/${encodeURIComponent("global/openai_api_key")}`),
    );
    assert.equal(gone.status, 404);
    shown.push(gone.text);
    const afterApi = await cli(["secrets", "list", "--json"]);
    assert.deepEqual(
      JSON.parse(afterApi.stdout).secrets.map((m: { ref: string }) => m.ref),
      ["channel:slack:acct-1/bot_token", "principal:ops/token"],
      "the CLI sees what the daemon changed",
    );

    // Every reveal is audited, with who, what and why, and never the value.
    const db = new BetterSqlite3(join(state, "palyra.db"), { readonly: true });
    const audit = db
      .prepare("SELECT kind, actor, detail FROM audit_events WHERE kind LIKE 'secret.%' ORDER BY at")
      .all() as {
      kind: string;
      actor: string;
      detail: string;
    }[];
    db.close();
    const reveals = audit.filter((a) => a.kind === "secret.revealed");
    assert.equal(reveals.length, 3);
    assert.match(reveals[0]!.actor, /^cli:/);
    assert.equal(reveals[2]!.actor, "admin");
    assert.deepEqual(JSON.parse(reveals[2]!.detail), {
      ref: "global/openai_api_key",
      reason: "rotate upstream key",
    });
    assert.ok(audit.some((a) => a.kind === "secret.set") && audit.some((a) => a.kind === "secret.deleted"));
    shown.push(JSON.stringify(audit));
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  shown.push(daemon.stderr());
  assert.match(daemon.stderr(), /vault open/);

  for (const text of shown)
    for (const form of [...forms(SECRET), ...forms(SECRET2)])
      assert.ok(!text.includes(form), `a secret leaked into output: ${text.slice(0, 200)}`);
  for (const entry of readdirSync(state, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const bytes = readFileSync(join(entry.parentPath, entry.name));
    for (const form of [...forms(SECRET), ...forms(SECRET2)])
      assert.ok(!bytes.includes(form), `${entry.name} holds a secret value`);
  }
});
