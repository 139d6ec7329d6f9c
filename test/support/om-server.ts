/**
 * An independent OzoneManager RPC server for tests (Java 17, JDK SASL/GSSAPI, protobuf-java): Hadoop
 * IPC v9 as a secure OM speaks it, Ozone's S3 secret semantics, HA roles, a retry cache, and a
 * record of every call and connection. It shares no code with ozs3's client (src/om/).
 *
 *   await using realm = await startRealm();
 *   await using om = await startOmServer(realm, { protection: 'privacy', admins: ['admin'] });
 *   await writeOzoneSite(confDir, ozoneSiteProps(om));   // OZONE_CONF_DIR=confDir
 *   // ... run ozs3 getsecret ...
 *   expect((await om.requests())[0]).toMatchObject({ cmdType: 'GetS3Secret', wrapped: true });
 *
 * One JVM serves every node (each its own listener on 127.0.0.1, port 0, plus [::1] on the same
 * port when available) over one shared secret store and retry cache. The JVM reads control lines
 * on stdin and exits when stdin closes, so it never outlives the test process; an exit hook
 * SIGKILLs it as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { clockOffsetEnv } from './jdk-gateway-faketime.js';
import { JAVA_COMMON_SOURCES, buildJava, REPO_ROOT, type JavaBuild } from './java.js';
import { withEnv, type Realm } from './realm.js';

export const OM_JAVA_DIR = fileURLToPath(new URL('./om-server/', import.meta.url));
export const OM_PROTOCOL = 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol';
const PROTO_DIR = join(REPO_ROOT, 'proto');
const PROTO_FILES = [
  'RpcHeader.proto',
  'IpcConnectionContext.proto',
  'ProtobufRpcEngine.proto',
  'hdds.proto',
  'Security.proto',
  'OmClientProtocol.proto',
];

/** Builds (or finds in .cache/java) the server, the self-test client and the generated protos. */
export function buildOmJava(): Promise<JavaBuild> {
  return buildJava({
    name: 'om-server',
    sources: [...JAVA_COMMON_SOURCES, ...['OmTestServer.java', 'OmTestClient.java'].map((f) => join(OM_JAVA_DIR, f))],
    protos: { dir: PROTO_DIR, files: PROTO_FILES },
  });
}

/** hadoop.rpc.protection: one value, or a list (the server offers them all, in this order). */
export type OmProtection =
  'authentication' | 'integrity' | 'privacy' | Array<'authentication' | 'integrity' | 'privacy'>;

export type OmRole = 'leader' | 'follower' | 'not-ready' | 'silent' | 'drop';

export interface OmRoleOptions {
  /**
   * follower: the leader named in OMNotLeaderException. Default: the first other node whose role is
   * leader, not-ready or drop; null (or no such node) gives "… Could not determine the leader node.".
   */
  suggestedLeader?: string | null;
  /** follower: the "[host/ip]" part; default InetAddress.getByName(<leader's host>).toString(). */
  suggestedLeaderAddress?: string;
  /** not-ready: how many calls get OMLeaderNotReadyException before the node acts as leader (default 1). */
  notReadyCalls?: number;
  /** drop: answer this many calls normally first (default 0). */
  dropAfterCalls?: number;
  /** drop: close before processing (nothing changes) or after (the store and retry cache change). Default after. */
  dropWhen?: 'before-processing' | 'after-processing';
  /** drop: how many calls to drop; then the node acts as leader (default 1). */
  dropCount?: number;
}

export interface OmNodeSpec {
  nodeId: string;
  /** Host name for addresses, ozone-site.xml and the not-leader message (default 'localhost'). */
  host?: string;
  role?: OmRole;
  roleOptions?: OmRoleOptions;
  /** This node's hadoop.rpc.protection (default: the server's). */
  protection?: OmProtection;
  /** Also listen on [::1] with the same port when possible (default true), for clients resolving localhost to ::1. */
  ipv6Loopback?: boolean;
}

export interface OmServerOptions {
  /** OM service principal; default 'om/localhost' (realm appended). Created with a random key if missing. */
  principal?: string;
  /** hadoop.rpc.protection (default 'authentication'). */
  protection?: OmProtection;
  /** S3 admins by short name ('*' = everyone); the OM's own service user is always one. */
  admins?: string[];
  /** Secrets present from the start (access id → secret). */
  secrets?: Record<string, string>;
  /** The secret an access id gets on its next successful GetS3Secret, instead of a random one. */
  presetSecrets?: Record<string, string>;
  /** Default one node: [{ nodeId: 'om1', role: 'leader' }]. */
  nodes?: OmNodeSpec[];
  /**
   * Artificial delay before a call is processed, in ms, keyed by access id, cmdType name
   * ('GetS3Secret'), caller principal or caller short name (the largest match applies).
   */
  delays?: Record<string, number>;
  /** List TOKEN/DIGEST-MD5 first in the SASL NEGOTIATE answer, as a secure OM does (default true). */
  tokenAuth?: boolean;
  /** hadoop.security.authorization: check the connection context's protocol (default true). */
  serviceAuthorization?: boolean;
  /** JDK Kerberos debug output on the JVM's stderr. */
  debug?: boolean;
  /** Run the JVM with its wall clock this many seconds off (libfaketime), as a skewed OM host. */
  clockOffsetSec?: number;
  startTimeoutMs?: number;
}

export interface OmNode {
  nodeId: string;
  host: string;
  port: number;
  /** host:port */
  address: string;
}

export interface OmNodeState extends OmNode {
  qop: string;
  role: OmRole;
  [key: string]: unknown;
}

export interface OmRecordedRequest {
  seq: number;
  node: string;
  connection: number;
  callId: number;
  /** RPC header clientId, hex. */
  clientId: string;
  retryCount: number;
  /** The authenticated principal (SASL authorization id). */
  principal: string | null;
  qop: string | null;
  /** The call arrived inside a SASL WRAP token. */
  wrapped: boolean;
  receivedMs: number;
  methodName?: string;
  declaringClassProtocolName?: string;
  clientProtocolVersion?: number;
  cmdType?: string;
  accessId?: string | null;
  /** OMRequest.clientId (a string). */
  omClientId?: string;
  traceID?: string | null;
  createIfNotExist?: boolean;
  /** Answered from the retry cache ((clientId, callId) seen before). */
  replayed?: boolean;
  /** OMResponse.status / success / message. */
  status?: string;
  success?: boolean;
  message?: string;
  rpcStatus?: 'SUCCESS' | 'ERROR';
  exceptionClassName?: string;
  errorMsg?: string;
  dropped?: 'before-processing' | 'after-processing';
  answeredMs?: number;
  sendError?: string;
}

export interface OmConnection {
  id: number;
  node: string;
  remotePort: number;
  local: string;
  silent: boolean;
  /** The 7 connection-header bytes, hex. */
  header: string | null;
  authProtocol: 'SASL' | 'NONE' | null;
  authMethod: 'KERBEROS' | 'TOKEN' | null;
  saslStates: string[];
  principal: string | null;
  qop: string | null;
  /** A security layer (auth-int / auth-conf) is in use. */
  wrapped: boolean;
  contextRead: boolean;
  /** IpcConnectionContextProto.protocol */
  protocol: string | null;
  contextHasUserInfo: boolean;
  /** IpcConnectionContextProto.userInfo.effectiveUser */
  contextUser: string | null;
  contextRealUser: string | null;
  calls: number;
  pings: number;
  /** Frames received outside a WRAP token after a security layer was negotiated (accepted, as Hadoop). */
  plaintextAfterLayer: number;
  wrappedFramesIn: number;
  wrapTokensIn: number;
  wrapTokensOut: number;
  /** unwrap() failures (the connection was closed without an answer). */
  wrapErrors: string[];
  errors: string[];
  /** The FATAL answer sent, if any. */
  fatal: { callId: number; exceptionClassName: string; errorMsg: string; errorDetail: string } | null;
  openedAt: number;
  closedAt: number | null;
  closedBy: string | null;
}

export interface OmServer extends AsyncDisposable {
  readonly nodes: OmNode[];
  /** Full OM principal, e.g. om/localhost@OZS3.TEST. */
  readonly principal: string;
  readonly keytab: string;
  readonly pid: number;
  readonly realm: Realm;
  readonly build: JavaBuild;
  /** JVM start until ready, ms. */
  readonly startMs: number;
  node(nodeId: string): OmNode;
  requests(): Promise<OmRecordedRequest[]>;
  connections(): Promise<OmConnection[]>;
  secrets(): Promise<Record<string, string>>;
  /** Seeds (or with null removes) a secret. */
  setSecret(accessId: string, secret: string | null): Promise<void>;
  presetSecret(accessId: string, secret: string): Promise<void>;
  setRole(nodeId: string, role: OmRole, options?: OmRoleOptions): Promise<OmNodeState>;
  nodeStates(): Promise<OmNodeState[]>;
  /** admins and delays apply at once; protection to connections opened afterwards. */
  setOptions(o: Pick<OmServerOptions, 'admins' | 'delays' | 'protection'>): Promise<void>;
  /** Clears the request log and closed connections; with retryCache, the retry cache too. */
  reset(o?: { retryCache?: boolean }): Promise<void>;
  /** Closes every open client connection from the server side. */
  closeConnections(): Promise<void>;
  /** JVM stderr tail (logs, JDK debug output). */
  stderr(): string;
  close(): Promise<void>;
}

const liveJvms = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveJvms) {
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

function qualify(realm: Realm, principal: string): string {
  return principal.includes('@') ? principal : `${principal}@${realm.name}`;
}

let serverCount = 0;

export async function startOmServer(realm: Realm, opts: OmServerOptions = {}): Promise<OmServer> {
  const principal = qualify(realm, opts.principal ?? 'om/localhost');
  const build = await buildOmJava();
  if (!(await realm.hasPrincipal(principal))) await realm.addPrincipal(principal, { randkey: true });
  const keytab = await realm.writeKeytab([principal], `om-${process.pid}-${++serverCount}.keytab`);
  const config = {
    realm: realm.name,
    principal,
    keytab,
    protection: opts.protection ?? 'authentication',
    admins: opts.admins ?? [],
    secrets: opts.secrets ?? {},
    presetSecrets: opts.presetSecrets ?? {},
    nodes: opts.nodes ?? [{ nodeId: 'om1', role: 'leader' }],
    delays: opts.delays ?? {},
    tokenAuth: opts.tokenAuth ?? true,
    serviceAuthorization: opts.serviceAuthorization ?? true,
    debug: opts.debug ?? false,
  };
  const jvmArgs = build.jvmArgs([
    `-Djava.security.krb5.conf=${realm.env['KRB5_CONFIG']}`,
    ...(opts.debug ? ['-Dsun.security.krb5.debug=true', '-Dsun.security.jgss.debug=true'] : []),
  ]);
  const started = performance.now();
  installExitHook();
  const child = spawn(build.java, [...jvmArgs, 'ozs3.omtest.OmTestServer'], {
    env: withEnv(realm, {
      OZS3_OM_CONFIG: JSON.stringify(config),
      ...(opts.clockOffsetSec !== undefined ? clockOffsetEnv(opts.clockOffsetSec) : {}),
    }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  liveJvms.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      liveJvms.delete(child);
      resolve();
    }),
  );
  child.stdin.on('error', () => {}); // the JVM may be gone when we write or close
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });

  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let onReady: ((msg: ReadyMessage) => void) | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let msg: { type?: string; id?: number; ok?: boolean; result?: unknown; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      stderr = (stderr + `\n[stdout] ${line}`).slice(-20_000);
      return;
    }
    if (msg.type === 'ready') {
      onReady?.(msg as ReadyMessage);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.ok) waiter.resolve(msg.result);
    else waiter.reject(new Error(`OM test server: ${msg.error ?? 'error'}`));
  });
  void exited.then(() => {
    for (const waiter of pending.values()) waiter.reject(new Error(`OM test server exited: ${stderr.slice(-2000)}`));
    pending.clear();
  });

  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  let ready: ReadyMessage;
  try {
    ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`OM test server not ready within ${timeoutMs} ms: ${stderr}`)),
        timeoutMs,
      );
      onReady = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`OM test server exited before it was ready (exit ${String(child.exitCode)}): ${stderr}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  const startMs = performance.now() - started;
  const nodes: OmNode[] = ready.nodes.map((n) => ({
    nodeId: n.nodeId,
    host: n.host,
    port: n.port,
    address: `${n.host}:${n.port}`,
  }));

  let nextId = 0;
  const call = <T>(op: string, extra: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`OM test server is not running: ${stderr.slice(-2000)}`));
        return;
      }
      const id = ++nextId;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.stdin.write(`${JSON.stringify({ id, op, ...extra })}\n`);
    });

  const withAddress = (s: Omit<OmNodeState, 'address'>): OmNodeState =>
    ({ ...s, address: `${String(s.host)}:${String(s.port)}` }) as OmNodeState;

  let closing: Promise<void> | undefined;
  const server: OmServer = {
    nodes,
    principal,
    keytab,
    pid: child.pid ?? 0,
    realm,
    build,
    startMs,
    node(nodeId) {
      const n = nodes.find((x) => x.nodeId === nodeId);
      if (!n) throw new Error(`no OM node ${nodeId}`);
      return n;
    },
    requests: () => call<OmRecordedRequest[]>('requests'),
    connections: () => call<OmConnection[]>('connections'),
    secrets: () => call<Record<string, string>>('secrets'),
    setSecret: (accessId, secret) => call<void>('setSecret', { accessId, secret }),
    presetSecret: (accessId, secret) => call<void>('presetSecret', { accessId, secret }),
    setRole: async (nodeId, role, options = {}) =>
      withAddress(await call<Omit<OmNodeState, 'address'>>('setRole', { nodeId, role, options })),
    nodeStates: async () => (await call<Array<Omit<OmNodeState, 'address'>>>('nodes')).map(withAddress),
    setOptions: (o) => call<void>('setOptions', { options: o }),
    reset: (o = {}) => call<void>('reset', { retryCache: o.retryCache ?? false }),
    closeConnections: () => call<void>('closeConnections'),
    stderr: () => stderr,
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
          await call('close').catch(() => undefined);
          child.stdin.end();
          await exited;
          clearTimeout(timer);
        }
        lines.close();
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return server;
}

interface ReadyMessage {
  type: 'ready';
  pid: number;
  principal: string;
  nodes: Array<{ nodeId: string; host: string; port: number }>;
}

export interface OzoneSiteOptions {
  /** HA service id; default: none for one node (ozone.om.address), 'omservice' for several. */
  serviceId?: string | null;
  /** Which nodes to list (default all), in this order. */
  nodeIds?: string[];
  /** ozone.om.kerberos.principal; default om/_HOST@REALM (the OM principal's first component). */
  principal?: string;
  /** hadoop.rpc.protection for the client side (default: left out). */
  protection?: OmProtection;
  /** Extra properties. */
  extra?: Record<string, string>;
}

/** ozone-site.xml properties pointing at the server's nodes. */
export function ozoneSiteProps(server: OmServer, o: OzoneSiteOptions = {}): Record<string, string> {
  const nodes = (o.nodeIds ?? server.nodes.map((n) => n.nodeId)).map((id) => server.node(id));
  const props: Record<string, string> = {};
  const serviceId = o.serviceId === undefined ? (nodes.length > 1 ? 'omservice' : null) : o.serviceId;
  if (serviceId) {
    props['ozone.om.service.ids'] = serviceId;
    props[`ozone.om.nodes.${serviceId}`] = nodes.map((n) => n.nodeId).join(',');
    for (const n of nodes) props[`ozone.om.address.${serviceId}.${n.nodeId}`] = n.address;
  } else {
    props['ozone.om.address'] = nodes[0]!.address;
  }
  const [service = 'om'] = server.principal.split(/[/@]/);
  const realmName = server.principal.slice(server.principal.indexOf('@') + 1);
  props['ozone.om.kerberos.principal'] = o.principal ?? `${service}/_HOST@${realmName}`;
  props['ozone.security.enabled'] = 'true';
  props['hadoop.security.authentication'] = 'kerberos';
  if (o.protection)
    props['hadoop.rpc.protection'] = Array.isArray(o.protection) ? o.protection.join(',') : o.protection;
  return { ...props, ...o.extra };
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Writes <dir>/ozone-site.xml (Hadoop configuration format); returns its path. */
export async function writeOzoneSite(dir: string, props: Record<string, string>): Promise<string> {
  const body = Object.entries(props)
    .map(
      ([name, value]) =>
        `  <property>\n    <name>${xmlEscape(name)}</name>\n    <value>${xmlEscape(value)}</value>\n  </property>`,
    )
    .join('\n');
  const path = join(dir, 'ozone-site.xml');
  await writeFile(path, `<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n${body}\n</configuration>\n`);
  return path;
}
