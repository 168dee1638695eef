import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

// Issue 14: the npm tarball installs like a real tool. `npm pack`, then `npm install -g` into a fresh
// prefix with no development tools on PATH (no node_modules/.bin: patch-package must come with the
// package), then the installed `palyra daemon` runs and serves QUIC with the patched library.
const REPO = fileURLToPath(new URL("..", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "palyra-pkg-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("npm pack + npm install -g into an empty prefix: the installed daemon serves gRPC and QUIC", {
  timeout: 600_000,
}, async (t) => {
  // PATH without any node_modules/.bin (npm test puts the repo's there): only node, npm and the system.
  const path = [
    dirname(process.execPath),
    ...(process.env.PATH ?? "").split(delimiter).filter((p) => !p.includes("node_modules")),
  ].join(delimiter);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: path,
    npm_config_audit: "false",
    npm_config_fund: "false",
  };
  for (const key of Object.keys(env))
    if (key.startsWith("npm_lifecycle") || key === "npm_package_json") delete env[key];
  const started = Date.now();
  execFileSync("npm", ["pack", "--silent", "--pack-destination", root], {
    cwd: REPO,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tarball = readdirSync(root).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote a tarball");
  const prefix = join(root, "prefix");
  execFileSync("npm", ["install", "-g", "--prefix", prefix, join(root, tarball)], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.diagnostic(`pack + install took ${Math.round((Date.now() - started) / 1000)} s`);
  const installed = join(prefix, "lib", "node_modules", "palyra");
  assert.match(
    readFileSync(join(installed, "node_modules", "@matrixai", "quic", "dist", "QUICServer.js"), "utf8"),
    /MIN_CLIENT_INITIAL_LEN/,
    "the QUIC patch was applied at install",
  );

  const stateRoot = join(root, "state");
  const daemon = spawn(
    join(prefix, "bin", "palyra"),
    [
      "daemon",
      "--state-root",
      stateRoot,
      "--admin-port",
      "0",
      "--node-port",
      "0",
      "--quic-port",
      "0",
      "--json",
    ],
    { env: { ...env, PALYRA_STORE_PASSPHRASE: "package test" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  try {
    let stdout = "";
    daemon.stdout.on("data", (d) => {
      stdout += d;
    });
    await Promise.race([
      new Promise<void>((resolve) => daemon.stdout.on("data", () => stdout.includes("}") && resolve())),
      once(daemon, "close").then(() => {
        throw new Error(`the installed daemon exited: ${stdout}`);
      }),
    ]);
    const info = JSON.parse(readFileSync(join(stateRoot, "daemon.json"), "utf8")) as {
      quic_address?: string;
      node_address: string;
    };
    assert.match(info.node_address, /^127\.0\.0\.1:\d+$/);
    assert.match(info.quic_address ?? "", /^127\.0\.0\.1:\d+$/, "the installed daemon serves QUIC");
  } finally {
    daemon.kill("SIGTERM");
    const [code] = await once(daemon, "close");
    assert.equal(code, 0);
  }
});
