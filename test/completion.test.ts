import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { runCli } from "./helpers/cli.js";

/** Completions bash offers after `words` (the last one being completed), with the script loaded. */
function complete(script: string, words: string[]): string[] {
  const run = spawnSync(
    "bash",
    [
      "-c",
      `eval "$SCRIPT"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _palyra; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { env: { ...process.env, SCRIPT: script }, encoding: "utf8" },
  );
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.split("\n").filter(Boolean).sort();
}

test("palyra completion bash: loaded into bash, compgen completes commands, subcommands and options", async () => {
  const result = await runCli(["completion", "bash"]);
  assert.equal(result.code, 0, result.stderr);
  const script = result.stdout;
  assert.deepEqual(complete(script, ["palyra", "pai"]), ["pair", "pairing"]);
  assert.deepEqual(complete(script, ["palyra", "pairing", ""]), ["approve", "code", "list", "reject"]);
  assert.deepEqual(complete(script, ["palyra", "pairing", "code", "--m"]), ["--max-attempts", "--method"]);
  assert.deepEqual(complete(script, ["palyra", "node", "run", "--gateway", "h:1", "--tr"]), ["--transport"]);
  assert.ok(complete(script, ["palyra", ""]).includes("completion"));
});

test("palyra completion zsh and fish print their scripts; another shell is a usage error", async () => {
  const zsh = await runCli(["completion", "zsh"]);
  assert.equal(zsh.code, 0);
  assert.match(zsh.stdout, /bashcompinit/);
  const fish = await runCli(["completion", "fish"]);
  assert.equal(fish.code, 0);
  assert.match(fish.stdout, /complete -c palyra -n '__fish_use_subcommand' -a daemon/);
  assert.match(
    fish.stdout,
    /-n '__fish_seen_subcommand_from code; and __fish_seen_subcommand_from pairing' -l method/,
  );
  const other = await runCli(["completion", "tcsh"]);
  assert.equal(other.code, 2);
  assert.equal(other.stderr, "error: the shell is bash, zsh or fish\n");
});

test("palyra --help shows examples, the environment variables and the exit codes", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  for (const part of [
    "Examples:",
    "palyra pairing code --method pin",
    "PALYRA_STATE_ROOT",
    "PALYRA_VAULT_BACKEND",
    "Exit codes:",
    "6 denied by policy",
  ])
    assert.ok(help.stdout.includes(part), part);
});
