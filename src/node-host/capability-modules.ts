import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Capability } from "./capabilities.js";
import { NodeHostError } from "./errors.js";

const NAME = /^[a-z][a-z0-9._-]{0,63}$/;

/**
 * Loads the node operator's own capabilities from ES modules (`palyra node run --capability-module
 * ./tools.mjs`). A module exports `capabilities` (or a default export): an array of
 * `{ name, description, requiresMediation?, run(input, ctx) }`. Everything is checked before the node
 * registers, so a typo fails at start-up rather than at the first call. The module runs with the node
 * host's own rights: it is the operator's code, loaded from a path the operator gave.
 */
export async function loadCapabilityModules(
  paths: readonly string[],
  builtIns: readonly Capability[],
): Promise<Capability[]> {
  const all = [...builtIns];
  const names = new Set(builtIns.map((c) => c.name));
  for (const path of paths) {
    const file = isAbsolute(path) ? path : resolve(path);
    if (!existsSync(file))
      throw new NodeHostError("invalid_config", `capability module ${file} does not exist`);
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      throw new NodeHostError(
        "invalid_config",
        `capability module ${file} failed to load: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const list = module.capabilities ?? module.default;
    if (!Array.isArray(list))
      throw new NodeHostError(
        "invalid_config",
        `${file} must export "capabilities" (or a default) as an array`,
      );
    for (const [i, entry] of list.entries()) {
      const where = `${file} capability #${i + 1}`;
      const c = entry as Partial<Capability> | null;
      if (!c || typeof c !== "object") throw new NodeHostError("invalid_config", `${where} is not an object`);
      if (typeof c.name !== "string" || !NAME.test(c.name))
        throw new NodeHostError("invalid_config", `${where}: name must match ${NAME.source}`);
      if (names.has(c.name))
        throw new NodeHostError("invalid_config", `${where}: ${c.name} is already defined`);
      if (typeof c.run !== "function")
        throw new NodeHostError("invalid_config", `${where}: run must be a function`);
      if (c.description !== undefined && typeof c.description !== "string")
        throw new NodeHostError("invalid_config", `${where}: description must be a string`);
      names.add(c.name);
      const run = c.run;
      all.push({
        name: c.name,
        description: (c.description ?? "").slice(0, 512),
        requiresMediation: c.requiresMediation === true,
        run: (input, ctx) => Promise.resolve(run.call(c, input, ctx)),
      });
    }
  }
  return all;
}
