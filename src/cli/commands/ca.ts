import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { CommonError } from "../../common/errors.js";
import { spkiFingerprint } from "../../crypto/fingerprint.js";
import { describeCaCertificate } from "../../daemon/ca-bootstrap.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { printResult } from "../output.js";

export function registerCaCommands(program: Command): void {
  const ca = program.command("ca").description("the gateway's certificate authority");
  ca.command("show")
    .description("print the CA's fingerprint, SPKI pin and validity")
    .option("--state-root <dir>", "state directory")
    .option("--json", "JSON output")
    .action((flags: { stateRoot?: string; json?: boolean }) => {
      const path = statePaths(resolveStateRoot(flags.stateRoot)).caCertificate;
      if (!existsSync(path))
        throw new CommonError(
          "not_found",
          `no CA at ${path}; start the daemon once (palyra daemon) to create it`,
        );
      const pem = readFileSync(path, "utf8");
      const facts = describeCaCertificate(pem);
      printResult(
        { ...facts, spki_sha256: spkiFingerprint(new X509Certificate(pem)), certificate_path: path },
        { json: flags.json },
      );
    });
}
