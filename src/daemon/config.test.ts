import assert from "node:assert/strict";
import { test } from "node:test";
import { configFromEnv, DEFAULT_CONFIG, resolveConfig } from "./config.js";
import { DaemonError } from "./errors.js";

const isCode = (code: string) => (err: unknown) => err instanceof DaemonError && err.code === code;

test("defaults: node port on TCP and QUIC on UDP, both 127.0.0.1:7444, QUIC on", () => {
  const config = resolveConfig();
  assert.deepEqual(config.node, { host: "127.0.0.1", port: 7444 });
  assert.deepEqual(config.quic, { host: "127.0.0.1", port: 7444, enabled: true });
  assert.deepEqual(config, DEFAULT_CONFIG);
});

test("flags beat the environment, which beats the file; a partial listener keeps the other fields", () => {
  const env = configFromEnv({ PALYRA_QUIC_PORT: "7555", PALYRA_QUIC_ENABLED: "false" });
  const config = resolveConfig({ quic: { host: "::1" } }, env, { quic: { port: 7666 } });
  assert.deepEqual(config.quic, { host: "::1", port: 7666, enabled: false });
});

test("bad or unknown QUIC settings are refused with the key named", () => {
  assert.throws(
    () => resolveConfig({ quic: { port: 70_000 } }),
    (err: unknown) => {
      assert.ok(isCode("invalid_config")(err));
      assert.match((err as Error).message, /quic\.port/);
      return true;
    },
  );
  assert.throws(() => configFromEnv({ PALYRA_QUIC_HOST: "example.com" }), isCode("invalid_config"));
  assert.throws(() => resolveConfig({ quic: { mtu: 1200 } } as never), isCode("invalid_config"));
});

test("a non-loopback QUIC bind needs the acknowledgement, unless QUIC is off", () => {
  assert.throws(() => resolveConfig({ quic: { host: "0.0.0.0" } }), isCode("unsafe_bind"));
  assert.equal(resolveConfig({ quic: { host: "0.0.0.0", enabled: false } }).quic.enabled, false);
  assert.equal(resolveConfig({ quic: { host: "0.0.0.0" }, allow_non_loopback: true }).quic.host, "0.0.0.0");
});

test("vault API scopes: deny-by-default list, skill scopes left out, patterns validated", () => {
  assert.deepEqual(resolveConfig().vault_api_scopes, ["global", "principal:*", "channel:*"]);
  const env = configFromEnv({ PALYRA_VAULT_API_SCOPES: "global, channel:slack:*,skill:extractor" });
  assert.deepEqual(resolveConfig(env).vault_api_scopes, ["global", "channel:slack:*", "skill:extractor"]);
  assert.deepEqual(resolveConfig({ vault_api_scopes: [] }).vault_api_scopes, []);
  for (const bad of [["GLOBAL"], ["principal:a*"], ["channel:a:b:*"], ["*:x"]])
    assert.throws(() => resolveConfig({ vault_api_scopes: bad }), {
      code: "invalid_config",
      message: /vault_api_scopes\.0: a vault scope or pattern/,
    });
});
