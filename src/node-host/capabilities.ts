import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { freemem, hostname, loadavg, platform, totalmem, uptime } from "node:os";
import { isAbsolute } from "node:path";
import { VERSION } from "../common/version.js";

export type Mediation = "allow" | "deny" | "prompt";

export interface CapabilityContext {
  deviceId: string;
  signal: AbortSignal;
  /** Asks the local user (or applies the configured policy); resolves true to go ahead. */
  consent(question: string): Promise<boolean>;
  /** Tell the gateway the call waits for local consent. */
  awaitingMediation(): void;
}

export interface Capability {
  name: string;
  description: string;
  requiresMediation: boolean;
  run(input: unknown, ctx: CapabilityContext): Promise<unknown>;
}

/** A capability refusing its input or its caller: reported as a failed call with this message. */
export class CapabilityError extends Error {}

/** http/https only, no credentials, no fragment: what a remote caller may ask a desktop to open. */
export function checkOpenableUrl(value: unknown): URL {
  if (typeof value !== "string" || value.length > 2048)
    throw new CapabilityError("url must be a string of at most 2048 characters");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CapabilityError("url is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new CapabilityError(`only http and https URLs may be opened, not ${url.protocol}`);
  if (url.username || url.password) throw new CapabilityError("URLs with credentials are refused");
  if (url.hash) throw new CapabilityError("URLs with a fragment are refused");
  return url;
}

function field(input: unknown, name: string): unknown {
  return input && typeof input === "object" ? (input as Record<string, unknown>)[name] : undefined;
}

/** Hands the target to the desktop's opener (xdg-open, open, or start); fails clearly if there is none. */
export function openOnDesktop(target: string): Promise<void> {
  const [command, args] =
    process.platform === "darwin"
      ? ["open", [target]]
      : process.platform === "win32"
        ? ["cmd", ["/c", "start", "", target]]
        : ["xdg-open", [target]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args as string[], { detached: true, stdio: "ignore" });
    child.once("error", (err) =>
      reject(
        new CapabilityError(
          `cannot open on this node: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? `${command} is not installed` : err.message}`,
        ),
      ),
    );
    child.once("spawn", () => {
      child.unref();
      resolve();
    });
  });
}

async function mediated(ctx: CapabilityContext, question: string): Promise<void> {
  ctx.awaitingMediation();
  if (!(await ctx.consent(question))) throw new CapabilityError("denied by the node's local user or policy");
}

export const BUILT_IN_CAPABILITIES: readonly Capability[] = [
  {
    name: "echo",
    description: "returns its input",
    requiresMediation: false,
    run: async (input) => input,
  },
  {
    name: "system.health",
    description: "load, memory and uptime of the node host",
    requiresMediation: false,
    run: async () => ({
      status: "ok",
      uptime_s: Math.round(uptime()),
      load_1m: loadavg()[0],
      memory_free_bytes: freemem(),
      memory_total_bytes: totalmem(),
    }),
  },
  {
    name: "system.identity",
    description: "who this node is",
    requiresMediation: false,
    run: async (_input, ctx) => ({
      device_id: ctx.deviceId,
      hostname: hostname(),
      platform: platform(),
      version: VERSION,
    }),
  },
  {
    name: "desktop.open_url",
    description: "opens an http(s) URL on the node's desktop, with local consent",
    requiresMediation: true,
    run: async (input, ctx) => {
      const url = checkOpenableUrl(field(input, "url"));
      await mediated(ctx, `Open ${url.href}?`);
      await openOnDesktop(url.href);
      return { opened: url.href };
    },
  },
  {
    name: "desktop.open_path",
    description: "opens an existing absolute path on the node's desktop, with local consent",
    requiresMediation: true,
    run: async (input, ctx) => {
      const path = field(input, "path");
      if (typeof path !== "string" || !isAbsolute(path) || !existsSync(path))
        throw new CapabilityError("path must be an absolute path that exists");
      await mediated(ctx, `Open ${path}?`);
      await openOnDesktop(path);
      return { opened: path };
    },
  },
];
