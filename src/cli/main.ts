import { Command, CommanderError } from "commander";
import { VERSION } from "../common/version.js";
import { registerAuditCommand } from "./commands/audit.js";
import { registerBackupCommands } from "./commands/backup.js";
import { registerCaCommands } from "./commands/ca.js";
import { registerCompletionCommand } from "./commands/completion.js";
import { registerConfigCommands } from "./commands/config.js";
import { registerContextCommand } from "./commands/context.js";
import { registerDaemonCommand } from "./commands/daemon.js";
import { registerDevicesCommands } from "./commands/devices.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerNodesCommands } from "./commands/nodes.js";
import { registerPairCommand } from "./commands/pair.js";
import { registerPairingCommands } from "./commands/pairing.js";
import { assertVaultBackendEnv, registerSecretsCommands } from "./commands/secrets.js";
import { closeGatewayClients } from "./gateway-client.js";
import { ExitCode, reportError, usageError } from "./output.js";

const HELP_AFTER = `
Examples:
  palyra daemon                                   run the gateway (console on http://127.0.0.1:7142)
  palyra pairing code --method pin                mint a PIN; prints the command for the device
  palyra node run --gateway 127.0.0.1:7444 --code 7QX2-482193
  palyra pairing approve <request-id> --reason "checked the comparison code"
  palyra nodes invoke <device-id> echo --input-json '{"hi":1}'
  palyra devices revoke <device-id> --reason "laptop lost"
  palyra audit --since 2h --kind pairing
  source <(palyra completion bash)

Environment:
  PALYRA_STATE_ROOT         state directory (else $XDG_STATE_HOME/palyra, else ~/.local/state/palyra)
  PALYRA_*                  daemon settings (see palyra config show and palyra.toml.example)
  PALYRA_STORE_PASSPHRASE   passphrase for the secret store's key when no OS keyring works
  PALYRA_VAULT_BACKEND      auto, secret-service, macos-keychain, windows-dpapi or encrypted-file
  PALYRA_VAULT_PASSPHRASE   passphrase for the encrypted-file vault's key

Exit codes:
  0 ok, 1 internal, 2 usage or invalid input, 3 authentication, 4 cannot reach the gateway,
  5 unsupported, 6 denied by policy, 7 failed precondition, 8 not found
`;

/** Commands that open the vault, and so read PALYRA_VAULT_BACKEND. */
const VAULT_COMMANDS = new Set(["daemon", "secrets"]);

export function buildProgram(): Command {
  const program = new Command("palyra")
    .description("Palyra gateway: private CA, device pairing, mTLS node fabric, scoped vault")
    .version(VERSION, "-V, --version")
    // Commander's own error lines are not printed: main reports them as one `error:` line (or the
    // JSON envelope), like every other error. Help and version still print.
    .configureOutput({ outputError: () => undefined })
    .exitOverride()
    // A command's options are its own: `daemon --json` and `daemon install-service --json` differ.
    .enablePositionalOptions();
  program.hook("preAction", (_program, action) => {
    let top = action;
    while (top.parent && top.parent !== program) top = top.parent;
    if (VAULT_COMMANDS.has(top.name())) assertVaultBackendEnv();
  });
  program.addHelpText("after", HELP_AFTER);
  registerDaemonCommand(program);
  registerCaCommands(program);
  registerDoctorCommand(program);
  registerPairingCommands(program);
  registerPairCommand(program);
  registerDevicesCommands(program);
  registerContextCommand(program);
  registerNodesCommands(program);
  registerNodeCommands(program);
  registerSecretsCommands(program);
  registerConfigCommands(program);
  registerAuditCommand(program);
  registerBackupCommands(program);
  registerCompletionCommand(program);
  return program;
}

/** Runs the CLI and returns the exit code (DESIGN section 10). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes("--json");
  try {
    await program.parseAsync(argv, { from: "user" });
    await closeGatewayClients();
    return ExitCode.ok;
  } catch (err) {
    await closeGatewayClients();
    if (err instanceof CommanderError) {
      // Help and version print and exit 0; help shown for a command given without its subcommand has
      // already printed. Anything else commander rejects is a usage error: one line, exit 2.
      if (err.exitCode === 0) return ExitCode.ok;
      if (err.code === "commander.help") return ExitCode.usage;
      const message = err.message
        .replace(/^error: /, "")
        .replace(/\s*\n\s*/g, " ")
        .trim();
      reportError(usageError(message), { json });
      return ExitCode.usage;
    }
    if ((err as { alreadyPrinted?: boolean }).alreadyPrinted) return (err as { exitCode: number }).exitCode;
    return reportError(err, { json });
  }
}
