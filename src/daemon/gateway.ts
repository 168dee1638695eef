import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ensurePrivateDirectory } from "../common/atomic-file.js";
import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { processStartTime } from "../common/process-alive.js";
import type { Random } from "../common/random.js";
import { SlidingWindowLimiter } from "../common/rate-limiter.js";
import { type Scheduler, systemScheduler } from "../common/scheduler.js";
import { acquireStateLock, type StateLock } from "../common/state-lock.js";
import { withTimeout } from "../common/timeout.js";
import { VERSION } from "../common/version.js";
import type { CertificateAuthority } from "../identity/ca.js";
import { DeviceRegistry } from "../identity/device-registry.js";
import {
  type FilesystemSecretStore,
  openFilesystemSecretStore,
} from "../identity/filesystem-secret-store.js";
import { CertificateRecovery } from "../identity/recovery.js";
import { CertificateRotation } from "../identity/rotation.js";
import type { PairingGatewayService } from "../pairing/gateway-service.js";
import { createPairingServices } from "../pairing/pairing-services.js";
import { type GatewayStore, openGatewayStore } from "../store/gateway-store.js";
import { openPostgresStore } from "../store/postgres/gateway-store.js";
import { registerPairingService } from "../transport/grpc/pairing-service.js";
import { registerRecoveryService } from "../transport/grpc/recovery-service.js";
import { NodePortServer } from "../transport/grpc/server.js";
import { QuicGatewayServer } from "../transport/quic/server.js";
import { VaultError } from "../vault/errors.js";
import { openVault } from "../vault/open-vault.js";
import { hostSecretsVault, type SecretsVault } from "../vault/secrets-vault.js";
import type { Vault } from "../vault/vault.js";
import type { AdminApiDeps } from "./admin-api.js";
import { createAdminServer, listen } from "./admin-http.js";
import { loadOrCreateAdminToken } from "./admin-token.js";
import { startAuditRetention } from "./audit-retention.js";
import { loadOrCreateCa } from "./ca-bootstrap.js";
import { ChangeFeed, topicsOfAuditKind } from "./change-feed.js";
import { loadOrCreateClusterCa } from "./cluster-ca.js";
import { type DaemonConfig, isLoopbackHost } from "./config.js";
import { ConnectionSweeper } from "./connection-sweeper.js";
import { ConsoleSessions } from "./console/sessions.js";
import { readDaemonInfo, removeDaemonInfo, writeDaemonInfo } from "./daemon-info.js";
import { followDeviceChanges, sweepFresh } from "./device-change-follower.js";
import { DeviceRotations } from "./device-rotations.js";
import { DaemonError } from "./errors.js";
import { EventCounters } from "./event-counters.js";
import { loadOrCreateGatewayId } from "./gateway-id.js";
import type { Logger } from "./logger.js";
import { processStats } from "./metrics.js";
import { ClusterNodes } from "./node-runtime/cluster-nodes.js";
import { NodeRuntime } from "./node-runtime/node-runtime.js";
import { registerNodeService } from "./node-runtime/node-service.js";
import { registerQuicNodeMethods } from "./node-runtime/quic-node-service.js";
import { OperationalLog } from "./operational-log.js";
import { registerOperatorService } from "./operator-service.js";
import { ServerCertificateManager } from "./server-certificate.js";
import { openSharedVault } from "./shared-vault.js";
import { statePaths } from "./state-root.js";

export interface GatewayOptions {
  stateRoot: string;
  config: DaemonConfig;
  logger: Logger;
  clock: Clock;
  random: Random;
  /** Timers (injected with the clock in tests); default the system's. */
  scheduler?: Scheduler;
  env?: NodeJS.ProcessEnv;
}

/** The Host names the admin port answers to: loopback, the bound address, configured names and IPs. */
function hostFilter(config: DaemonConfig): (host: string | undefined) => boolean {
  const names = new Set(
    ["localhost", "127.0.0.1", "::1", config.admin.host, ...config.server_names, ...config.server_ips].map(
      (n) => n.toLowerCase(),
    ),
  );
  return (host) => {
    if (host === undefined) return true;
    try {
      return names.has(new URL(`http://${host}`).hostname.replace(/^\[|\]$/g, "").toLowerCase());
    } catch {
      return false;
    }
  };
}

export type GatewayState = "starting" | "running" | "stopping" | "stopped";

/** The composition root: state root, secret store, database, CA, server certificate, listeners. */
export class Gateway {
  readonly ca: CertificateAuthority;
  readonly devices: DeviceRegistry;
  readonly pairing: PairingGatewayService;
  /** host:port of the node port (gRPC over mutual TLS). */
  readonly nodeAddress: string;
  readonly #nodePort: NodePortServer;
  /** host:port of the QUIC endpoint (UDP); undefined when QUIC is off or unavailable here. */
  readonly quicAddress: string | undefined;
  readonly #quic: QuicGatewayServer | undefined;
  readonly adminUrl: string;
  readonly #store: GatewayStore;
  readonly #secrets: FilesystemSecretStore;
  readonly #vault: Vault | undefined;
  readonly #vaultSweep: NodeJS.Timeout | undefined;
  readonly #auditPrune: NodeJS.Timeout | undefined;
  readonly #serverCert: ServerCertificateManager;
  readonly #sweeper: ConnectionSweeper;
  readonly #admin: Server;
  readonly #logger: Logger;
  readonly #infoPath: string;
  readonly #lock: StateLock;
  readonly #nodes: NodeRuntime;
  readonly #cluster: ClusterNodes | undefined;
  #state: GatewayState = "running";

  private constructor(parts: {
    ca: CertificateAuthority;
    store: GatewayStore;
    secrets: FilesystemSecretStore;
    vault: Vault | undefined;
    vaultSweep: NodeJS.Timeout | undefined;
    auditPrune: NodeJS.Timeout | undefined;
    devices: DeviceRegistry;
    pairing: PairingGatewayService;
    nodePort: NodePortServer;
    nodeAddress: string;
    quic: QuicGatewayServer | undefined;
    quicAddress: string | undefined;
    serverCert: ServerCertificateManager;
    sweeper: ConnectionSweeper;
    admin: Server;
    adminUrl: string;
    logger: Logger;
    infoPath: string;
    lock: StateLock;
    nodes: NodeRuntime;
    cluster?: ClusterNodes | undefined;
  }) {
    this.ca = parts.ca;
    this.#store = parts.store;
    this.#secrets = parts.secrets;
    this.#vault = parts.vault;
    this.#vaultSweep = parts.vaultSweep;
    this.#auditPrune = parts.auditPrune;
    this.devices = parts.devices;
    this.pairing = parts.pairing;
    this.#nodePort = parts.nodePort;
    this.nodeAddress = parts.nodeAddress;
    this.#quic = parts.quic;
    this.quicAddress = parts.quicAddress;
    this.#serverCert = parts.serverCert;
    this.#sweeper = parts.sweeper;
    this.#admin = parts.admin;
    this.adminUrl = parts.adminUrl;
    this.#logger = parts.logger;
    this.#infoPath = parts.infoPath;
    this.#lock = parts.lock;
    this.#nodes = parts.nodes;
    this.#cluster = parts.cluster;
  }

  state(): GatewayState {
    return this.#state;
  }

  static async start(options: GatewayOptions): Promise<Gateway> {
    const { config, logger, clock, random } = options;
    const paths = statePaths(options.stateRoot);
    ensurePrivateDirectory(paths.root);
    // Before anything else, and held for the daemon's life: two daemons started at once on a new root
    // would otherwise both run, and could create two CAs. A leftover daemon.json does not matter.
    const lock = await acquireStateLock(paths.root, "daemon");
    if (!lock) {
      const running = readDaemonInfo(paths.daemonInfo);
      throw new DaemonError(
        "already_running",
        `another daemon${running ? ` (pid ${running.pid})` : ""} already uses ${paths.root}`,
      );
    }

    let secrets: Awaited<ReturnType<typeof openFilesystemSecretStore>>;
    let store: GatewayStore;
    try {
      secrets = await openFilesystemSecretStore(paths.secrets, { env: options.env ?? process.env });
      try {
        // A database URL puts the state in the cluster's PostgreSQL; otherwise the embedded SQLite file.
        store = config.database.url
          ? await openPostgresStore(config.database.url, clock, random)
          : openGatewayStore(paths.database, clock, random);
      } catch (err) {
        secrets.close();
        throw err;
      }
    } catch (err) {
      lock.release();
      throw err;
    }
    const feed = new ChangeFeed();
    const operational = new OperationalLog(logger, clock);
    const counters = new EventCounters();
    store.audit.onAppend = (record) => {
      feed.publish(...topicsOfAuditKind(record.kind));
      operational.audit(record);
      counters.audit(record);
    };
    let vault: Vault | undefined;
    let vaultSweep: NodeJS.Timeout | undefined;
    let auditPrune: NodeJS.Timeout | undefined;
    let cluster: ClusterNodes | undefined;
    try {
      // The gateway runs without its vault (the API answers 503 with the reason): a locked or missing
      // keyring must not keep devices from connecting.
      let vaultProblem = "";
      let secretsVault: SecretsVault | undefined;
      if (store.vault) {
        // Several gateways: the shared vault in the database (this host's OS store is not used).
        try {
          secretsVault = await openSharedVault({
            meta: store.meta,
            rows: store.vault,
            location: store.location,
            passphrase: (options.env ?? process.env).PALYRA_CA_PASSPHRASE,
            clock,
            random,
          });
          logger.info({ backend: "database" }, "vault open");
        } catch (err) {
          vaultProblem = (err as Error).message;
          logger.error({ err: vaultProblem }, "vault unavailable");
        }
      } else
        try {
          vault = await openVault(paths.vault, {
            env: options.env ?? process.env,
            onWarning: (message) => logger.warn(message),
          });
          const described = vault.describe();
          if (described.weak) logger.warn({ backend: described.backend }, described.detail);
          logger.info({ backend: described.backend, protection: described.protection }, "vault open");
          // Blobs whose deletion failed (a store that was briefly away) are retried now and then.
          const openVaultRef = vault;
          vaultSweep = setInterval(
            () =>
              void openVaultRef
                .collectGarbage()
                .catch((err: Error) => logger.warn({ err: err.message }, "vault clean-up failed")),
            limits.vaultCollectIntervalMs,
          );
          vaultSweep.unref();
          secretsVault = hostSecretsVault(vault);
        } catch (err) {
          vaultProblem = (err as Error).message;
          logger.error({ err: vaultProblem }, "vault unavailable");
        }
      const vaultAccess = (): SecretsVault => {
        if (secretsVault) return secretsVault;
        throw new VaultError("backend_unavailable", `the vault is unavailable: ${vaultProblem}`);
      };
      const env = options.env ?? process.env;
      const { ca, created } =
        store.kind === "postgres"
          ? await loadOrCreateClusterCa(
              store.meta,
              env.PALYRA_CA_PASSPHRASE,
              clock,
              random,
              paths.caCertificate,
            )
          : await loadOrCreateCa(secrets, store.meta, clock, random, paths.caCertificate);
      logger.info(
        { ca_fingerprint: ca.fingerprint, created },
        created ? "created gateway CA" : "loaded gateway CA",
      );

      const devices = new DeviceRegistry(store.devices, clock);
      const clientCertificateLifetimeMs = config.client_certificate_lifetime_minutes * 60_000;
      const adminToken = loadOrCreateAdminToken(paths.adminToken, random);
      const {
        codes,
        approvals,
        service: pairing,
      } = createPairingServices({
        store,
        ca,
        clock,
        random,
        registry: devices,
        clientCertificateLifetimeMs,
        beginRates: {
          perAddress: config.pairing_begins_per_address_per_minute,
          total: config.pairing_begins_per_minute,
        },
      });
      const pruned = await devices.pruneRevokedCertificates();
      if (pruned > 0) logger.info({ pruned }, "pruned expired revoked certificates");
      auditPrune = startAuditRetention(store.audit, clock, config.audit_retention_days, logger);

      const serverCert = new ServerCertificateManager(ca, clock, {
        dnsNames: config.server_names,
        ipAddresses: config.server_ips,
      });
      const issued = await serverCert.issue();
      logger.info(
        { fingerprint: issued.certificate.fingerprint, not_after: issued.certificate.notAfter.toISOString() },
        "issued server certificate",
      );
      serverCert.onRenew((id) =>
        logger.info({ fingerprint: id.certificate.fingerprint }, "renewed server certificate"),
      );
      serverCert.start((err) =>
        logger.error({ err: (err as Error).message }, "server certificate renewal failed"),
      );

      const nodePort = new NodePortServer({
        identity: issued,
        caPem: ca.certPem,
        authorizePeer: (leafDer) => devices.authorizePeer(leafDer),
        clock,
        onTlsEvent: (event) => {
          if (
            event.kind === "refused" ||
            event.kind === "handshake_failed" ||
            event.kind === "handshake_timeout" ||
            event.kind === "handshake_shed"
          )
            counters.refused(event.kind === "refused" ? event.reason : event.kind);
          if (event.kind === "refused")
            operational.refused(
              {
                reason: event.reason,
                source: event.remoteAddress,
                ...(event.deviceId === undefined ? {} : { device_id: event.deviceId }),
              },
              `node port connection refused: ${event.detail}`,
            );
          else if (event.kind === "handshake_failed" || event.kind === "handshake_timeout")
            operational.refused(
              {
                reason: event.kind,
                source: event.remoteAddress,
                ...("detail" in event ? { detail: event.detail } : {}),
              },
              "node port handshake failed",
            );
          else logger.debug({ event: event.kind }, "node port connection event");
        },
        onRpcEvent: (event) =>
          event.kind === "handler_error"
            ? logger.error(
                { method: event.method, err: (event.error as Error)?.message },
                "rpc handler failed",
              )
            : logger.info({ method: event.method, reason: event.reason, peer: event.peer }, "rpc denied"),
      });
      registerPairingService(nodePort, pairing);
      registerRecoveryService(
        nodePort,
        new CertificateRecovery({
          ca,
          registry: devices,
          clock,
          windowMs: config.certificate_recovery_days * 24 * 60 * 60 * 1000,
          clientCertificateLifetimeMs,
        }),
        {
          caCertPem: ca.certPem,
          clock,
          onRecovered: (deviceId, source) =>
            logger.info({ device_id: deviceId, source }, "device certificate recovered"),
        },
      );
      const scheduler = options.scheduler ?? systemScheduler;
      // On a shared database each gateway fails only its own unfinished calls when it restarts.
      const gatewayId =
        store.kind === "postgres" ? loadOrCreateGatewayId(paths.gatewayId, clock, random) : "local";
      const nodes = new NodeRuntime({
        repo: store.nodes,
        clock,
        scheduler,
        random,
        gatewayId,
        onChange: () => feed.publish("nodes"),
        onDisconnected: (deviceId) => operational.nodeDisconnected(deviceId),
      });
      const reconciled = await nodes.reconcile();
      if (store.kind === "postgres") {
        cluster = new ClusterNodes({
          runtime: nodes,
          nodes: store.nodes,
          presence: store.presence,
          signals: store.signals,
          clock,
          logger,
          gatewayId,
        });
        nodes.attachRemote(cluster);
        await cluster.start();
      }
      if (reconciled.failed + reconciled.pruned > 0)
        logger.info(reconciled, "reconciled capability requests left by the last run");
      const rotations = new DeviceRotations({
        rotation: new CertificateRotation({ ca, registry: devices, clock, clientCertificateLifetimeMs }),
        registry: devices,
        runtime: nodes,
        scheduler,
      });
      let nodeHostPort = "";
      const api: AdminApiDeps = {
        audit: store.audit,
        ...(store.kind === "sqlite" ? { databasePath: paths.database } : {}),
        codes,
        approvals,
        nodeAddress: () => nodeHostPort,
        devices,
        nodes,
        rotations,
        connections: {
          count: (deviceId) => nodePort.connections.connectionCount(deviceId),
          close: (deviceId, reason) => nodePort.closeDevice(deviceId, reason),
        },
        secrets: {
          vault: vaultAccess,
          scopes: config.vault_api_scopes,
          audit: (entry) => store.audit.append(entry),
          reveals: new SlidingWindowLimiter(clock, {
            limit: limits.vaultRevealsPerWindow,
            windowMs: limits.vaultRevealWindowMs,
          }),
        },
      };
      registerNodeService(nodePort, {
        runtime: nodes,
        registry: devices,
        rotations,
        clock,
        clientCertificateLifetimeMs,
        caCertPem: ca.certPem,
      });
      registerOperatorService(nodePort, { api, gatewayId });
      // On a shared database each sweep reads afresh: the backstop for a revocation signal this
      // gateway missed while its listener reconnected.
      const sweepTarget =
        store.kind === "postgres" ? { sweep: sweepFresh(() => nodePort.sweep()) } : nodePort;
      const sweeper = new ConnectionSweeper(sweepTarget, scheduler, (cut) =>
        logger.info(
          { device_id: cut.deviceId, fingerprint: cut.fingerprint },
          "closed a connection whose certificate is no longer accepted",
        ),
      );
      nodePort.follow(serverCert, (err) =>
        logger.error({ err: (err as Error).message }, "server certificate swap failed"),
      );
      let nodeAddress: AddressInfo;
      try {
        nodeAddress = await nodePort.listen(config.node.host, config.node.port);
      } catch (err) {
        serverCert.stop();
        throw new DaemonError(
          "bind_failed",
          `could not listen on the node port ${config.node.host}:${config.node.port}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      nodeHostPort = `${nodeAddress.family === "IPv6" ? `[${nodeAddress.address}]` : nodeAddress.address}:${nodeAddress.port}`;
      let quic: QuicGatewayServer | undefined;
      let quicAddress: string | undefined;
      if (config.quic.enabled) {
        quic = new QuicGatewayServer({
          identity: issued,
          caPem: ca.certPem,
          authorizePeer: (leafDer) => devices.authorizePeer(leafDer),
          // Shared with the node port: revoking a device (closeDevice) and the sweeper reach QUIC too.
          registry: nodePort.connections,
          clock,
          onEvent: (event) => {
            if (event.kind === "stream_error")
              logger.error(
                { method: event.method, err: (event.error as Error)?.message },
                "quic handler failed",
              );
            else if (event.kind === "refused" || event.kind === "busy") {
              counters.refused(event.kind === "busy" ? "busy" : String(event.reason));
              operational.refused(
                { event: event.kind, reason: "reason" in event ? event.reason : undefined },
                "quic connection refused",
              );
            }
          },
        });
        registerQuicNodeMethods(quic, { runtime: nodes, clock });
        try {
          const bound = await quic.listen(config.quic.host, config.quic.port);
          quic.follow(serverCert);
          quicAddress = `${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== "unsupported_platform") {
            serverCert.stop();
            await nodePort.close(0);
            throw new DaemonError(
              "bind_failed",
              `could not serve QUIC on ${config.quic.host}:${config.quic.port}: ${(err as Error).message}`,
              { cause: err },
            );
          }
          logger.warn(
            { err: (err as Error).message },
            "QUIC is not available on this platform; serving gRPC only",
          );
          quic = undefined;
        }
      }
      const startedAt = clock.now();
      const adminTls = !isLoopbackHost(config.admin.host);
      const admin = createAdminServer(
        () => ({
          status: "ok",
          version: VERSION,
          ca_fingerprint: ca.fingerprint,
          uptime_s: Math.floor((clock.now() - startedAt) / 1000),
        }),
        logger,
        {
          feed,
          hostAllowed: hostFilter(config),
          metrics: async () => {
            return {
              version: VERSION,
              counters: counters.families(),
              process: processStats(),
              uptimeSeconds: Math.floor((clock.now() - startedAt) / 1000),
              devices: await devices.counts(),
              nodes: await nodes.presenceCounts(),
              pendingPairingRequests: await approvals.pendingCount(),
              nodeConnections: nodePort.connections.deviceConnectionCount(),
              vaultSecrets: secretsVault ? (await secretsVault.list()).length : null,
            };
          },
          auth: {
            token: adminToken,
            sessions: new ConsoleSessions(clock, random),
            logins: new SlidingWindowLimiter(clock, {
              limit: limits.consoleLoginsPerWindow,
              windowMs: limits.consoleLoginWindowMs,
            }),
          },
          api,
        },
        // Beyond loopback the admin port carries the token and console cookies over a network: HTTPS only.
        adminTls ? serverCert : undefined,
      );
      let address: AddressInfo;
      try {
        address = await listen(admin, config.admin.host, config.admin.port);
      } catch (err) {
        serverCert.stop();
        await nodePort.close(0);
        await quic?.close();
        throw new DaemonError(
          "bind_failed",
          `could not listen on ${config.admin.host}:${config.admin.port}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      // A wildcard bind is reached locally through loopback (which the server certificate names).
      const reachable =
        address.address === "0.0.0.0" ? "127.0.0.1" : address.address === "::" ? "::1" : address.address;
      const host = reachable.includes(":") ? `[${reachable}]` : reachable;
      const adminUrl = `${adminTls ? "https" : "http"}://${host}:${address.port}`;
      sweeper.start();
      // Only changes made by other gateways need following: here a revocation closes its own connections.
      if (store.kind === "postgres")
        followDeviceChanges({
          signals: store.signals,
          registry: devices,
          close: (deviceId, reason) => nodePort.closeDevice(deviceId, reason),
          logger,
        });
      writeDaemonInfo(paths.daemonInfo, {
        pid: process.pid,
        pid_start_time: processStartTime(process.pid) ?? null,
        started_at: new Date(startedAt).toISOString(),
        version: VERSION,
        admin_url: adminUrl,
        node_address: nodeHostPort,
        ...(quicAddress ? { quic_address: quicAddress } : {}),
        ca_fingerprint: ca.fingerprint,
      });
      logger.info(
        {
          admin_url: adminUrl,
          node_address: nodeHostPort,
          quic_address: quicAddress,
          state_root: paths.root,
        },
        "gateway running",
      );
      return new Gateway({
        ca,
        store,
        secrets,
        vault,
        vaultSweep,
        auditPrune,
        devices,
        pairing,
        nodePort,
        nodeAddress: nodeHostPort,
        quic,
        quicAddress,
        serverCert,
        sweeper,
        admin,
        adminUrl,
        logger,
        infoPath: paths.daemonInfo,
        lock,
        nodes,
        cluster,
      });
    } catch (err) {
      clearInterval(vaultSweep);
      clearInterval(auditPrune);
      cluster?.stop();
      vault?.close();
      await store.close().catch(() => undefined);
      secrets.close();
      lock.release();
      throw err;
    }
  }

  /** Stops listeners, then closes the database. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#state !== "running") return;
    this.#state = "stopping";
    this.#serverCert.stop();
    this.#sweeper.stop();
    // Goodbye first, so nodes reconnect the moment a gateway is back instead of waiting out a backoff
    // or an idle timeout; then in-flight calls get a short drain before connections are closed.
    await withTimeout(
      this.#nodes.goodbyeAll("gateway shutting down"),
      limits.shutdownGoodbyeMs,
      () => new Error("goodbye timed out"),
    ).catch(() => undefined);
    await Promise.all([this.#nodePort.close(limits.shutdownDrainMs), this.#quic?.close()]);
    await new Promise<void>((resolve) => {
      this.#admin.close(() => resolve());
      this.#admin.closeAllConnections();
    });
    removeDaemonInfo(this.#infoPath);
    await this.#cluster
      ?.leave()
      .catch((err: Error) => this.#logger.warn({ err: err.message }, "leaving the cluster failed"));
    clearInterval(this.#vaultSweep);
    clearInterval(this.#auditPrune);
    this.#vault?.close();
    await this.#store
      .close()
      .catch((err: Error) => this.#logger.warn({ err: err.message }, "closing the store failed"));
    this.#secrets.close();
    this.#lock.release();
    this.#state = "stopped";
    this.#logger.info("gateway stopped");
  }
}
