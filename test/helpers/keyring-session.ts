import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/**
 * A real Secret Service for tests, away from the developer's own keyring: a private D-Bus session
 * (`dbus-run-session`) with gnome-keyring unlocked on a throwaway keyring, and HOME and the XDG dirs
 * pointing at fresh temp directories (Debian packages: dbus-daemon, gnome-keyring, libsecret-tools).
 */

/** An environment with no trace of the caller's desktop session, keyring or Palyra settings. */
export function isolatedKeyringEnv(
  root: string,
  name: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const home = join(root, name, "home");
  const data = join(root, name, "data");
  const runtime = join(root, name, "run");
  for (const dir of [home, data, runtime]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: data,
    XDG_RUNTIME_DIR: runtime,
  };
  for (const key of ["DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "DISPLAY", "WAYLAND_DISPLAY"])
    delete env[key];
  for (const key of Object.keys(env)) if (key.startsWith("PALYRA_")) delete env[key];
  return { ...env, ...extra };
}

/** Runs `script` (sh) in a private D-Bus session whose keyring is unlocked, or left locked if asked. */
export function runInKeyringSession(
  script: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; unlock?: boolean; timeoutMs?: number },
): SpawnSyncReturns<string> {
  const unlock = options.unlock ?? true;
  const body = unlock
    ? `printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null && ${script}`
    : script;
  const run = spawnSync("dbus-run-session", ["--", "sh", "-c", body], {
    cwd: options.cwd,
    env: options.env,
    encoding: "utf8",
    timeout: options.timeoutMs ?? 120_000,
  });
  if (run.error)
    throw new Error(
      `dbus-run-session must be installed (Debian: dbus-daemon, gnome-keyring): ${run.error.message}`,
    );
  return run;
}
