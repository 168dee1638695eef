import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { configSources, DEFAULT_CONFIG, flattenConfig, readConfigFile, resolveConfig } from "./config.js";

const EXAMPLE = fileURLToPath(new URL("../../palyra.toml.example", import.meta.url));

test("palyra.toml.example parses, sets every key, and sets each to its default", () => {
  const example = readConfigFile(EXAMPLE);
  assert.deepEqual(resolveConfig(example), DEFAULT_CONFIG);
  assert.deepEqual(
    [...flattenConfig(example).keys()].sort(),
    [...flattenConfig(DEFAULT_CONFIG).keys()].sort(),
  );
});

test("configSources names the last source that set each value", () => {
  const sources = configSources([
    ["palyra.toml", { admin: { port: 7200 }, log_level: "warn" }],
    ["environment", { log_level: "debug" }],
  ]);
  assert.equal(sources.get("admin.port"), "palyra.toml");
  assert.equal(sources.get("admin.host"), "default");
  assert.equal(sources.get("log_level"), "environment");
});
