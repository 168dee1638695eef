import { Command, CommanderError } from "commander";
import { VERSION } from "../common/version.js";
import { registerCaCommands } from "./commands/ca.js";
import { registerDaemonCommand } from "./commands/daemon.js";
import { registerDevicesCommands } from "./commands/devices.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerNodesCommands } from "./commands/nodes.js";
import { registerPairCommand } from "./commands/pair.js";
import { registerPairingCommands } from "./commands/pairing.js";
import { registerSecretsCommands } from "./commands/secrets.js";
import { ExitCode, reportError } from "./output.js";

export function buildProgram(): Command {
  const program = new Command("palyra")
    .description("Palyra gateway: private CA, device pairing, mTLS node fabric, scoped vault")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerDaemonCommand(program);
  registerCaCommands(program);
  registerDoctorCommand(program);
  registerPairingCommands(program);
  registerPairCommand(program);
  registerDevicesCommands(program);
  registerNodesCommands(program);
  registerNodeCommands(program);
  registerSecretsCommands(program);
  return program;
}

/** Runs the CLI and returns the exit code (DESIGN section 10). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version print and exit 0; anything else commander rejects is a usage error
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const json = argv.includes("--json");
    if ((err as { alreadyPrinted?: boolean }).alreadyPrinted) return (err as { exitCode: number }).exitCode;
    return reportError(err, { json });
  }
}
