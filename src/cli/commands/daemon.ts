import type { Command } from "commander";
import { systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { systemRandom } from "../../common/random.js";
import { configFromEnv, readConfigFile, resolveConfig } from "../../daemon/config.js";
import { Gateway } from "../../daemon/gateway.js";
import { createLogger } from "../../daemon/logger.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { printResult } from "../output.js";
import { currentUser, installUnit, scopeOf, systemdUnit, unitDirectory } from "../service-units.js";

interface DaemonFlags {
  stateRoot?: string;
  adminHost?: string;
  adminPort?: string;
  nodeHost?: string;
  nodePort?: string;
  quicHost?: string;
  quicPort?: string;
  /** false with --no-quic */
  quic?: boolean;
  serverName?: string[];
  serverIp?: string[];
  logLevel?: string;
  allowNonLoopback?: boolean;
  clientCertLifetime?: string;
  databaseUrl?: string;
  json?: boolean;
}

export function registerDaemonCommand(program: Command): void {
  const daemon = program
    .command("daemon")
    .description("run the gateway: CA, database, server certificate, admin API (Ctrl-C to stop)")
    .option(
      "--state-root <dir>",
      "state directory (default $PALYRA_STATE_ROOT, $XDG_STATE_HOME/palyra, ~/.local/state/palyra)",
    )
    .option(
      "--database-url <url>",
      "postgresql://user@host/db: state shared by several gateways (default: SQLite in the state root; " +
        "the password goes in PGPASSWORD or ~/.pgpass, and every gateway needs PALYRA_CA_PASSPHRASE)",
    )
    .option("--admin-host <host>", "admin HTTP bind address (default 127.0.0.1)")
    .option("--admin-port <port>", "admin HTTP port (default 7142; 0 picks a free one)")
    .option("--node-host <host>", "node port bind address (default 127.0.0.1)")
    .option("--node-port <port>", "node port, gRPC over mutual TLS (default 7444; 0 picks a free one)")
    .option("--quic-host <host>", "QUIC bind address (default 127.0.0.1)")
    .option("--quic-port <port>", "QUIC port on UDP, mutual TLS (default 7444; 0 picks a free one)")
    .option("--no-quic", "do not serve QUIC")
    .option("--server-name <name...>", "extra DNS names for the server certificate")
    .option("--server-ip <ip...>", "extra IP addresses for the server certificate")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace|silent (default info)")
    .option("--allow-non-loopback", "acknowledge listening on a non-loopback address")
    .option(
      "--client-cert-lifetime <minutes>",
      "life of device certificates issued from now on (default 1440; 3 to 43200)",
    )
    .option("--json", "print the startup summary as JSON on stdout")
    .action(async (flags: DaemonFlags) => {
      const stateRoot = resolveStateRoot(flags.stateRoot);
      const fromFlags = {
        ...(flags.databaseUrl !== undefined ? { database: { url: flags.databaseUrl } } : {}),
        ...(flags.adminHost || flags.adminPort
          ? {
              admin: {
                ...(flags.adminHost ? { host: flags.adminHost } : {}),
                ...(flags.adminPort ? { port: Number(flags.adminPort) } : {}),
              },
            }
          : {}),
        ...(flags.nodeHost || flags.nodePort
          ? {
              node: {
                ...(flags.nodeHost ? { host: flags.nodeHost } : {}),
                ...(flags.nodePort ? { port: Number(flags.nodePort) } : {}),
              },
            }
          : {}),
        ...(flags.quicHost || flags.quicPort || flags.quic === false
          ? {
              quic: {
                ...(flags.quicHost ? { host: flags.quicHost } : {}),
                ...(flags.quicPort ? { port: Number(flags.quicPort) } : {}),
                ...(flags.quic === false ? { enabled: false } : {}),
              },
            }
          : {}),
        ...(flags.serverName ? { server_names: flags.serverName } : {}),
        ...(flags.serverIp ? { server_ips: flags.serverIp } : {}),
        ...(flags.logLevel ? { log_level: flags.logLevel as "info" } : {}),
        ...(flags.allowNonLoopback ? { allow_non_loopback: true } : {}),
        ...(flags.clientCertLifetime
          ? { client_certificate_lifetime_minutes: Number(flags.clientCertLifetime) }
          : {}),
      };
      const config = resolveConfig(
        readConfigFile(statePaths(stateRoot).config),
        configFromEnv(process.env),
        fromFlags,
      );
      const logger = createLogger(config.log_level);
      // Listen for signals before starting, so one that arrives during start-up still stops cleanly.
      const signalled = waitForSignal();
      const gateway = await Gateway.start({
        stateRoot,
        config,
        logger,
        clock: systemClock,
        random: systemRandom,
      });
      printResult(
        {
          state_root: stateRoot,
          admin_url: gateway.adminUrl,
          node_address: gateway.nodeAddress,
          quic_address: gateway.quicAddress ?? null,
          ca_fingerprint: gateway.ca.fingerprint,
          // Where to find the token the console's sign-in and remote tools need.
          admin_token: statePaths(stateRoot).adminToken,
        },
        { json: flags.json },
      );
      const signal = await signalled;
      logger.info({ signal }, "stopping");
      const forced = setTimeout(() => process.exit(1), limits.shutdownGraceMs);
      forced.unref();
      await gateway.stop();
    });
  // The daemon's own options (--state-root, --json) stay before a subcommand; after `install-service`
  // they are that subcommand's.
  daemon.enablePositionalOptions();
  registerInstallService(daemon);
}

/** `palyra daemon install-service`: a hardened systemd unit for the daemon on this state root. */
function registerInstallService(daemon: Command): void {
  daemon
    .command("install-service")
    .description(
      "write a systemd unit that runs the daemon at boot (--user: your session; --system: the machine)",
    )
    .option("--user", "a user unit in ~/.config/systemd/user (the default)")
    .option("--system", "a system unit in /etc/systemd/system, running as you")
    .option("--state-root <dir>", "state directory the service uses")
    .option("--unit-dir <dir>", "write the unit here instead")
    .option("--json", "JSON output")
    .action(
      (flags: { user?: boolean; system?: boolean; stateRoot?: string; unitDir?: string; json?: boolean }) => {
        const scope = scopeOf(flags);
        const stateRoot = resolveStateRoot(flags.stateRoot);
        const unit = systemdUnit({
          description: "Palyra gateway daemon",
          args: ["daemon", "--state-root", stateRoot],
          stateRoot,
          scope,
          user: currentUser(),
        });
        printResult(installUnit("palyra", unit, scope, unitDirectory(scope, flags.unitDir)), {
          json: flags.json,
        });
      },
    );
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
      resolve(signal);
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}
