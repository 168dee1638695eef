import { mkdirSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../common/atomic-file.js";
import { CommonError } from "../common/errors.js";

export type ServiceScope = "user" | "system";

/** The palyra entry point this process runs from (bin/palyra.js of the installed package). */
function palyraEntry(): string {
  return resolve(fileURLToPath(new URL("../../bin/palyra.js", import.meta.url)));
}

/** systemd quotes: each word in double quotes, with \ and " escaped (paths may hold spaces). */
function quote(word: string): string {
  if (/[\n\r]/.test(word))
    throw new CommonError("invalid_input", "a path with a line break cannot go into a unit");
  return `"${word.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * A hardened systemd unit that runs `palyra <args>` with the state root as the only writable place:
 * no new privileges, the file system read-only but for the state root, private /tmp, no kernel
 * tunables, restarted on failure, stopped with SIGTERM (the daemon and node say goodbye and exit 0).
 */
export function systemdUnit(options: {
  description: string;
  args: string[];
  stateRoot: string;
  scope: ServiceScope;
  /** For a system unit: the account it runs as. */
  user?: string;
}): string {
  const exec = [process.execPath, palyraEntry(), ...options.args].map(quote).join(" ");
  return `# Written by palyra; re-run the install command to update it.
[Unit]
Description=${options.description}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${exec}
Environment=${quote(`PALYRA_STATE_ROOT=${options.stateRoot}`)}
${options.scope === "system" && options.user ? `User=${options.user}\n` : ""}Restart=on-failure
RestartSec=2s
KillSignal=SIGTERM
TimeoutStopSec=10s
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${quote(options.stateRoot)}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes

[Install]
WantedBy=${options.scope === "system" ? "multi-user.target" : "default.target"}
`;
}

/** Where a unit goes: ~/.config/systemd/user, /etc/systemd/system, or the directory given. */
export function unitDirectory(scope: ServiceScope, override?: string): string {
  if (override) return resolve(override);
  return scope === "system"
    ? "/etc/systemd/system"
    : join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd", "user");
}

/** Writes the unit and returns what to run next. */
export function installUnit(name: string, unit: string, scope: ServiceScope, directory: string) {
  // A unit directory is not private (systemd and other units live there); create it if missing.
  mkdirSync(directory, { recursive: true, mode: 0o755 });
  const path = join(directory, `${name}.service`);
  writeFileAtomic(path, unit, 0o644);
  const ctl = scope === "system" ? "systemctl" : "systemctl --user";
  return { unit: path, next: `${ctl} daemon-reload && ${ctl} enable --now ${name}` };
}

export function scopeOf(flags: { user?: boolean; system?: boolean }): ServiceScope {
  if (flags.user && flags.system) throw new CommonError("invalid_input", "give --user or --system, not both");
  return flags.system ? "system" : "user";
}

export function currentUser(): string {
  return userInfo().username;
}
