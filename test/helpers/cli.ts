import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

export const CLI_ENTRY = fileURLToPath(new URL("../../src/cli/run.ts", import.meta.url));

/** Environment for CLI children: no session bus (so no keyring), a test passphrase, quiet logs. */
export function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PALYRA_STORE_PASSPHRASE: "test passphrase", ...extra };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  delete env.PALYRA_STATE_ROOT;
  return env;
}

/**
 * Every CLI child a test file starts: killed when the file's tests end, pass or fail, so a failed
 * assertion never leaves a daemon or node host running that keeps the test process (and CI) alive.
 */
const children = new Set<ChildProcessWithoutNullStreams>();
// Only under the test runner: a benchmark importing these helpers must not print a test report.
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  const { after } = await import("node:test");
  after(() => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
}

const recorded = new WeakMap<NodeJS.ReadableStream, { text: string }>();

/** Everything a spawned CLI's stdout or stderr has said so far (waitForOutput's `fromStart`). */
export function recordedOutput(stream: NodeJS.ReadableStream): string | undefined {
  return recorded.get(stream)?.text;
}

/** Spawns `palyra <args>` with piped stdio; the child is killed when the test file ends. */
export function spawnCli(args: string[], env = testEnv()): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, ["--import", "tsx", CLI_ENTRY, ...args], { env });
  // Kept from the first byte, so a wait set up after a line was printed still finds it.
  for (const stream of [child.stdout, child.stderr]) {
    const record = { text: "" };
    recorded.set(stream, record);
    stream.on("data", (d: Buffer) => {
      record.text += d;
    });
  }
  children.add(child);
  child.once("close", () => children.delete(child));
  return child;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `palyra <args>` to completion, with `input` on its stdin when given. */
export async function runCli(
  args: string[],
  env = testEnv(),
  timeoutMs = 30_000,
  input?: string,
): Promise<CliResult> {
  const child = spawnCli(args, env);
  if (input !== undefined) child.stdin.end(input);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface DaemonProcess {
  child: ChildProcessWithoutNullStreams;
  summary: {
    state_root: string;
    admin_url: string;
    node_address: string;
    quic_address: string | null;
    ca_fingerprint: string;
  };
  stderr: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts `palyra daemon --json` and resolves once it printed its summary (it is then serving). */
export async function startDaemon(
  stateRoot: string,
  env = testEnv(),
  extraArgs: string[] = [],
): Promise<DaemonProcess> {
  const child = spawnCli(
    [
      "daemon",
      "--state-root",
      stateRoot,
      "--admin-port",
      "0",
      "--node-port",
      "0",
      "--quic-port",
      "0",
      "--json",
      ...extraArgs,
    ],
    env,
  );
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const summary = await new Promise<DaemonProcess["summary"]>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`daemon did not start in time; stderr: ${stderr}`)),
      30_000,
    );
    child.stdout.on("data", (d) => {
      stdout += d;
      let parsed: DaemonProcess["summary"] & { error?: unknown };
      try {
        parsed = JSON.parse(stdout);
      } catch {
        return; // summary not complete yet
      }
      // With --json a start-up failure is a JSON error envelope on stdout: the close handler rejects.
      if (parsed.error !== undefined) return;
      clearTimeout(timer);
      resolve(parsed);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      reject(
        Object.assign(new Error(`daemon exited with ${code}: ${stdout}${stderr}`), { code, stderr, stdout }),
      );
    });
  });
  return {
    child,
    summary,
    stderr: () => stderr,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null) return child.exitCode;
      const closed = once(child, "close");
      child.kill(signal);
      const [code] = (await closed) as [number | null];
      return code;
    },
  };
}

/** Runs `palyra pair` and resolves its request id as soon as it prints it (it then waits for approval). */
export function startPair(args: string[], deviceRoot: string) {
  const child = spawnCli(["pair", "--state-root", deviceRoot, ...args]);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const requestId = new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      stdout += d;
      const match = /request id\s+([0-9A-Z]{26})/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.once("close", (code) => reject(new Error(`pair exited ${code} before a request id: ${stderr}`)));
  });
  const exit = once(child, "close").then(([code]) => ({ code: code as number, stdout, stderr }));
  return { requestId, exit };
}
