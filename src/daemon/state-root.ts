import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/** The daemon's state root: flag, else $PALYRA_STATE_ROOT, else $XDG_STATE_HOME/palyra, else ~/.local/state/palyra. */
export function resolveStateRoot(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  if (env.PALYRA_STATE_ROOT) return resolve(env.PALYRA_STATE_ROOT);
  if (env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME)) return join(env.XDG_STATE_HOME, "palyra");
  return join(env.HOME || homedir(), ".local", "state", "palyra");
}

/** Where each piece of state lives under the root. One place, so the CLI and daemon agree. */
export function statePaths(root: string) {
  return {
    root,
    config: join(root, "palyra.toml"),
    database: join(root, "palyra.db"),
    secrets: join(root, "secrets"),
    vault: join(root, "vault"),
    caCertificate: join(root, "ca.pem"),
    daemonInfo: join(root, "daemon.json"),
    adminToken: join(root, "admin.token"),
    gatewayId: join(root, "gateway.id"),
    logs: join(root, "logs"),
  };
}
export type StatePaths = ReturnType<typeof statePaths>;
