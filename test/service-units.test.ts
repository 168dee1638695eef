import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { systemdUnit } from "../src/cli/service-units.js";
import { runCli } from "./helpers/cli.js";

// systemd units for the daemon and the node host, checked with Debian's `systemd-analyze verify`
// (system mode: this machine runs no user manager, and the unit syntax is the same for both scopes).
const root = mkdtempSync(join(tmpdir(), "palyra units "));
after(() => rmSync(root, { recursive: true, force: true }));

function verify(path: string): { status: number | null; output: string } {
  const run = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

test("palyra daemon install-service writes a hardened unit that systemd-analyze verifies", async () => {
  const stateRoot = join(root, "state with space");
  for (const scope of ["--user", "--system"]) {
    const dir = join(root, `units${scope}`);
    const result = await runCli([
      "daemon",
      "install-service",
      scope,
      "--unit-dir",
      dir,
      "--state-root",
      stateRoot,
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const written = JSON.parse(result.stdout) as { unit: string; next: string };
    assert.equal(written.unit, join(dir, "palyra.service"));
    assert.match(
      written.next,
      scope === "--system" ? /^systemctl daemon-reload/ : /^systemctl --user daemon-reload/,
    );
    const unit = readFileSync(written.unit, "utf8");
    for (const line of [
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      `ReadWritePaths="${stateRoot}"`,
      "Restart=on-failure",
      scope === "--system" ? "WantedBy=multi-user.target" : "WantedBy=default.target",
    ])
      assert.ok(unit.includes(`${line}\n`), `${line} in ${unit}`);
    assert.match(
      unit,
      new RegExp(`ExecStart=".*node" ".*bin/palyra.js" "daemon" "--state-root" "${stateRoot}"`),
    );
    const checked = verify(written.unit);
    assert.equal(checked.status, 0, checked.output);
    assert.equal(checked.output.trim(), "", "no warnings");
  }
  const both = await runCli(["daemon", "install-service", "--user", "--system", "--unit-dir", root]);
  assert.equal(both.code, 2);
});

test("the node host's unit verifies too; systemd-analyze does flag a broken unit (control)", () => {
  const path = join(root, "palyra-node.service");
  writeFileSync(
    path,
    systemdUnit({
      description: "Palyra node host",
      args: ["node", "run", "--state-root", root],
      stateRoot: root,
      scope: "user",
    }),
  );
  const ok = verify(path);
  assert.equal(ok.status, 0, ok.output);
  const broken = join(root, "broken.service");
  writeFileSync(broken, "[Service]\nExecStart=relative/path\n");
  assert.notEqual(verify(broken).output.trim(), "", "the verifier is not silent about a bad unit");
});
