import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type DaemonProcess, runCli, startDaemon, testEnv } from "./helpers/cli.js";

/**
 * Bad input at the edges, against a real daemon: the admin HTTP server answers every malformed or
 * stalled request with a status (never a dropped socket), JSON nested past the limit is refused before
 * it is parsed, secret values keep their bytes, and the CLI's usage errors are one line (or the JSON
 * envelope) with the exit codes of DESIGN section 10.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-bad-input-"));
const state = join(root, "gateway");
let daemon: DaemonProcess;
let token: string;
before(async () => {
  daemon = await startDaemon(state);
  token = readFileSync(join(state, "admin.token"), "utf8").trim();
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

const UNKNOWN_DEVICE = "01JAAAAAAAAAAAAAAAAAAAAAAA";
const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
const cli = (args: string[], input?: string, env = testEnv()) =>
  runCli([...args, "--state-root", state], env, 30_000, input);

function api(method: string, path: string, body?: string | Buffer) {
  return fetch(new URL(path, daemon.summary.admin_url), {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body }),
  });
}

/**
 * Sends raw bytes on a fresh TCP connection and collects everything the server writes until it closes
 * the connection (or `timeoutMs` passes, which fails). `halfClose` ends our side after the bytes.
 */
function rawExchange(
  payload: string,
  options: { halfClose?: boolean; timeoutMs?: number } = {},
): Promise<{ response: string; ms: number }> {
  const { port, hostname } = new URL(daemon.summary.admin_url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(Number(port), hostname, () => {
      socket.write(payload);
      if (options.halfClose) socket.end();
    });
    let response = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${options.timeoutMs ?? 15_000} ms; got ${JSON.stringify(response)}`));
    }, options.timeoutMs ?? 15_000);
    socket.on("data", (d) => {
      response += d;
    });
    socket.on("error", () => {
      // a reset after the answer is fine; the close below reports what arrived
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ response, ms: Date.now() - started });
    });
  });
}

const statusOf = (response: string) => /^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1];

test("admin HTTP: oversized headers get 431 with a JSON error, not a dropped socket", async () => {
  const { response } = await rawExchange(
    `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ${"a".repeat(20_000)}\r\n\r\n`,
  );
  assert.equal(statusOf(response), "431", JSON.stringify(response.slice(0, 200)));
  assert.match(response, /"code":"headers_too_large"/);
});

test("admin HTTP: a body that stops coming gets 408 within 10 s", async () => {
  const { response, ms } = await rawExchange(
    `POST /v1/pairing/codes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"method":',
    { timeoutMs: 12_000 },
  );
  assert.equal(statusOf(response), "408", JSON.stringify(response.slice(0, 200)));
  assert.match(response, /"code":"request_timeout"/);
  assert.ok(ms < 10_000, `answered after ${ms} ms`);
});

test("admin HTTP: a body shorter than its Content-Length, then a half-close, gets 400", async () => {
  const { response } = await rawExchange(
    `POST /v1/pairing/codes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"method":"pin"}',
    { halfClose: true },
  );
  assert.equal(statusOf(response), "400", JSON.stringify(response.slice(0, 200)));
  assert.match(response, /"code":"bad_request"/);
  // ...and the daemon keeps serving.
  assert.equal((await fetch(new URL("/healthz", daemon.summary.admin_url))).status, 200);
});

test("admin API: JSON nested deeper than 64 levels is refused with 400 before it is parsed", async () => {
  for (const levels of [65, 5000]) {
    const res = await api(
      "POST",
      `/v1/nodes/${UNKNOWN_DEVICE}/invoke`,
      `{"capability":"echo","input":${nested(levels)}}`,
    );
    assert.equal(res.status, 400, `${levels} levels`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "invalid_input");
    assert.match(body.error.message, /nested deeper than 64 levels/);
  }
  // At the limit the input passes the check (and the unknown device is what fails).
  const atLimit = await api(
    "POST",
    `/v1/nodes/${UNKNOWN_DEVICE}/invoke`,
    `{"capability":"echo","input":${nested(64)}}`,
  );
  assert.equal(atLimit.status, 404);
  const deep = await api("POST", "/v1/pairing/codes", nested(5000));
  assert.equal(deep.status, 400);
});

test("CLI: --input-json nested 5000 levels exits 2 with one error line (not 'cannot reach the daemon')", async () => {
  const result = await cli(["nodes", "invoke", UNKNOWN_DEVICE, "echo", "--input-json", nested(5000)]);
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stderr, "error: the input is nested deeper than 64 levels\n");
});

test("CLI: nodes invoke on an unknown device exits 8; the API answers 404", async () => {
  const result = await cli(["nodes", "invoke", UNKNOWN_DEVICE, "echo", "--input-json", '{"hi":1}']);
  assert.equal(result.code, 8, result.stderr);
  assert.match(result.stderr, new RegExp(`^error: no registered node ${UNKNOWN_DEVICE}\\n$`));
  const res = await api("POST", `/v1/nodes/${UNKNOWN_DEVICE}/invoke`, '{"capability":"echo"}');
  assert.equal(res.status, 404);
});

test("admin API: a secret value that is not valid UTF-8 is refused, never stored as U+FFFD", async () => {
  const path = "/v1/secrets/global%2Fbinary";
  const invalid = Buffer.concat([Buffer.from('{"value":"ab'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  const res = await api("PUT", path, invalid);
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /not valid UTF-8/);
  const lone = await api("PUT", path, '{"value":"ab\\ud800"}');
  assert.equal(lone.status, 400);
  assert.match(((await lone.json()) as { error: { message: string } }).error.message, /value_base64/);
  assert.equal((await api("GET", path)).status, 404, "nothing was stored");
  // The same bytes as value_base64 are kept exactly.
  const bytes = Buffer.from([0x61, 0x62, 0xff, 0xfe]);
  const stored = await api("PUT", path, JSON.stringify({ value_base64: bytes.toString("base64") }));
  assert.equal(stored.status, 201);
  const revealed = (await (await api("POST", `${path}/reveal`, "{}")).json()) as { value_base64: string };
  assert.equal(revealed.value_base64, bytes.toString("base64"));
});

test("admin API: an empty secret value is refused unless allow_empty is set", async () => {
  const path = "/v1/secrets/global%2Fempty";
  for (const body of ['{"value":""}', '{"value_base64":""}']) {
    const res = await api("PUT", path, body);
    assert.equal(res.status, 400, body);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /empty/);
  }
  const allowed = await api("PUT", path, '{"value":"","allow_empty":true}');
  assert.equal(allowed.status, 201);
  assert.equal(((await allowed.json()) as { size: number }).size, 0);
});

test("CLI: secrets set --value-file reads at most the limit + 1 bytes, from any file type", async () => {
  const zero = await runCli(
    ["secrets", "set", "global/zero", "--value-file", "/dev/zero", "--state-root", state],
    testEnv(),
    15_000,
  );
  assert.equal(zero.code, 2, `exit ${zero.code}: ${zero.stderr}`);
  assert.equal(zero.stderr, "error: /dev/zero is larger than 65536 bytes\n");
  const big = join(root, "big");
  writeFileSync(big, Buffer.alloc(65_537, 0x61));
  const tooBig = await cli(["secrets", "set", "global/big", "--value-file", big]);
  assert.equal(tooBig.code, 2, tooBig.stderr);
  writeFileSync(big, Buffer.alloc(65_536, 0x61));
  const exact = await cli(["secrets", "set", "global/big", "--value-file", big, "--json"]);
  assert.equal(exact.code, 0, exact.stderr);
  assert.equal(JSON.parse(exact.stdout).size, 65_536);
});

test("CLI: an empty secret value is refused unless --allow-empty", async () => {
  const empty = join(root, "empty");
  writeFileSync(empty, "");
  for (const [args, input] of [
    [["secrets", "set", "global/nothing", "--value-stdin"], ""],
    [["secrets", "set", "global/nothing", "--value-file", empty], undefined],
  ] as const) {
    const result = await cli([...args], input);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr, "error: the value is empty (pass --allow-empty to store an empty secret)\n");
  }
  assert.equal((await cli(["secrets", "get", "global/nothing"])).code, 8, "nothing was stored");
  const allowed = await cli(
    ["secrets", "set", "global/nothing", "--value-stdin", "--allow-empty", "--json"],
    "",
  );
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(JSON.parse(allowed.stdout).size, 0);
});

test("CLI: commander's usage errors are one error: line, and the JSON envelope with --json", async () => {
  for (const [args, message] of [
    [["secrets", "set", "global/x", "--bogus"], "unknown option '--bogus'"],
    [["secrets", "sett"], "unknown command 'sett' (Did you mean set?)"],
    [["nodes", "invoke"], "missing required argument 'device-id'"],
    [["secrets", "migrate"], "required option '--to <kind>' not specified"],
  ] as const) {
    const plain = await runCli([...args], testEnv());
    assert.equal(plain.code, 2, `${args.join(" ")}: ${plain.stderr}`);
    assert.equal(plain.stderr, `error: ${message}\n`, args.join(" "));
    assert.equal(plain.stdout, "");
    const json = await runCli([...args, "--json"], testEnv());
    assert.equal(json.code, 2, `${args.join(" ")} --json: ${json.stderr}`);
    assert.equal(json.stderr, "", `${args.join(" ")} --json writes nothing to stderr`);
    assert.deepEqual(JSON.parse(json.stdout), {
      error: { domain: "common", code: "invalid_input", message },
    });
  }
  // Help is not an error.
  const help = await runCli(["secrets", "set", "--help"], testEnv());
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--value-file/);
});

test("CLI: an unknown vault backend name exits 2", async () => {
  const migrate = await cli(["secrets", "migrate", "--to", "nonsense"]);
  assert.equal(migrate.code, 2, migrate.stderr);
  assert.match(migrate.stderr, /^error: unknown vault backend 'nonsense' \(one of: [a-z, -]+\)\n$/);
  const env = await cli(["secrets", "list"], undefined, testEnv({ PALYRA_VAULT_BACKEND: "nonsense" }));
  assert.equal(env.code, 2, env.stderr);
  assert.match(env.stderr, /^error: PALYRA_VAULT_BACKEND: unknown vault backend 'nonsense'/);
  const daemonRun = await runCli(
    ["daemon", "--state-root", join(root, "other"), "--admin-port", "0", "--node-port", "0", "--no-quic"],
    testEnv({ PALYRA_VAULT_BACKEND: "nonsense" }),
  );
  assert.equal(daemonRun.code, 2, daemonRun.stderr);
  assert.match(daemonRun.stderr, /PALYRA_VAULT_BACKEND: unknown vault backend 'nonsense'/);
});
