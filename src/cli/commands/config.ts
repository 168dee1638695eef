import type { Command } from "commander";
import {
  configFromEnv,
  configSources,
  flattenConfig,
  readConfigFile,
  redactDatabaseUrl,
  resolveConfig,
} from "../../daemon/config.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { printResult } from "../output.js";
import { table } from "../table.js";

/** `palyra config show`: the configuration a daemon would run with here, and where each value comes from. */
export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("the daemon's configuration");
  config
    .command("show")
    .description("print the effective configuration with the source of each value (flag sources aside)")
    .option("--state-root <dir>", "state directory (its palyra.toml is read)")
    .option("--json", "JSON output")
    .action((flags: { stateRoot?: string; json?: boolean }) => {
      const root = resolveStateRoot(flags.stateRoot);
      const file = readConfigFile(statePaths(root).config);
      const env = configFromEnv(process.env);
      const effective = resolveConfig(file, env);
      const sources = configSources([
        ["palyra.toml", file],
        ["environment", env],
      ]);
      const values = [...flattenConfig(effective)].map(([key, value]) => ({
        key,
        value: key === "database.url" ? redactDatabaseUrl(value as string) : value,
        source: sources.get(key) ?? "default",
      }));
      if (flags.json)
        return printResult(
          { state_root: root, config_file: statePaths(root).config, values },
          { json: true },
        );
      process.stdout.write(
        table(
          values.map((v) => ({ ...v, value: JSON.stringify(v.value) })),
          ["key", "value", "source"],
        ),
      );
    });
}
