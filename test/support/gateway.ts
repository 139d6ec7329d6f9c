/**
 * Typed wrapper around gateway-server.mjs: an Ozone-compatible `/secret` endpoint with real SPNEGO,
 * forked into its own process (the kerberos library reads KRB5_* at first use) with the realm env
 * plus KRB5_KTNAME=<service keytab holding HTTP/localhost@REALM>.
 *
 *   await using gw = await startGateway(realm, { admins: ['admin'] });
 *   // curl --negotiate -u : -X PUT ${gw.url}/secret
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withEnv, type Realm } from './realm.js';

export interface GatewayOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** S3 admins: full principals or short names; '*' means everyone (ozone.s3.administrators). */
  admins?: string[];
  /** Ozone 2.x with authorization on: S3SecretAdminFilter guards every form, even one's own. */
  adminOnly?: boolean;
  /** ozone.s3g.secret.http.enabled=false → 400 with body `S3 Secret endpoint is disabled.` */
  disabled?: boolean;
  /** HDDS-11040 (1.4.1-era): the /{username} forms answer 405. */
  userForm405?: boolean;
  /** Send `WWW-Authenticate: Negotiate <mutual token>` on success (default true). */
  mutual?: boolean;
  /** Issue the signed `hadoop.auth` cookie on success (default true). */
  setCookie?: boolean;
  /** Cookie Path attribute; default none (Ozone's secretAuthentication filter sets no cookie.path). */
  cookiePath?: string | null;
  /** Cookie validity in seconds (default 36000, Hadoop's token.validity). */
  cookieValiditySec?: number;
  /** The secret a user gets on their next PUT (for awkward characters); else 64 random hex chars. */
  presetSecrets?: Record<string, string>;
  /** Secrets that exist from the start (a PUT for these users answers S3_SECRET_ALREADY_EXISTS). */
  existingSecrets?: Record<string, string>;
  /** Where S3_SECRET_* codes go: the reason phrase (Jetty 9.4 Ozone, default) or a text/plain body (Jetty 12). */
  errorCodeIn?: 'reason' | 'body';
  /** GSS acceptor name: '' (default: any key in the keytab) or a host-based name such as 'HTTP@localhost'. */
  acceptor?: string;
  /** Service principals in the gateway's keytab; default ['HTTP/localhost']. */
  servicePrincipals?: string[];
  /** Artificial latency per request, in ms (benchmarks, timeouts). */
  latencyMs?: number;
}

export interface RecordedRequest {
  seq: number;
  time: string;
  method: string;
  /** Raw path, without the query string. */
  path: string;
  /** Raw query string (without '?'), or null. */
  query: string | null;
  /** Lower-cased request headers; Authorization as `Negotiate <redacted len=N>`. */
  headers: Record<string, string | string[] | undefined>;
  /** Authenticated principal (e.g. alice@OZS3.TEST), or null. */
  principal: string | null;
  authVia: 'negotiate' | 'cookie' | null;
  /** The user whose secret was acted on (the caller's principal, or the path's username). */
  user: string | null;
  status: number;
  reason: string;
  durationMs: number;
  acceptorTarget?: string;
  error?: string;
}

export interface Gateway extends AsyncDisposable {
  /** http://localhost:<port> (the host name the SPNEGO service principal is for). */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly keytab: string;
  requests(): Promise<RecordedRequest[]>;
  secrets(): Promise<Record<string, string>>;
  setOptions(o: Partial<GatewayOptions>): Promise<void>;
  /** Clears the request log and the secret store (back to existingSecrets). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export const GATEWAY_SERVER_PATH = fileURLToPath(new URL('./gateway-server.mjs', import.meta.url));

let gatewayCount = 0;

export async function startGateway(realm: Realm, opts: GatewayOptions = {}): Promise<Gateway> {
  const { servicePrincipals = ['HTTP/localhost'], ...serverOptions } = opts;
  for (const principal of servicePrincipals) {
    if (!(await realm.hasPrincipal(principal))) await realm.addPrincipal(principal, { randkey: true });
  }
  const keytab = await realm.writeKeytab(servicePrincipals, `gateway-${process.pid}-${++gatewayCount}.keytab`);
  const child = fork(GATEWAY_SERVER_PATH, [], {
    env: withEnv(realm, {
      KRB5_KTNAME: `FILE:${keytab}`,
      OZS3_GATEWAY_OPTIONS: JSON.stringify({ realm: realm.name, ...serverOptions }),
    }),
    // Do not inherit vitest's loaders/flags.
    execArgv: [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start within 10 s: ${stderr}`));
    }, 10_000);
    child.once('message', (msg: { type?: string; port?: number }) => {
      clearTimeout(timer);
      if (msg?.type === 'ready' && typeof msg.port === 'number') resolve(msg.port);
      else reject(new Error(`unexpected first message from gateway: ${JSON.stringify(msg)}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${String(code)} before listening: ${stderr}`));
    });
  });

  return createGatewayHandle(child, port, keytab, exited);
}

function createGatewayHandle(child: ChildProcess, port: number, keytab: string, exited: Promise<void>): Gateway {
  let nextId = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (msg: { id?: number; ok?: boolean; result?: unknown; error?: string }) => {
    if (typeof msg?.id !== 'number') return;
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.ok) waiter.resolve(msg.result);
    else waiter.reject(new Error(msg.error ?? 'gateway error'));
  });
  void exited.then(() => {
    for (const waiter of pending.values()) waiter.reject(new Error('gateway process exited'));
    pending.clear();
  });

  const call = <T>(type: string, extra: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (!child.connected) {
        reject(new Error('gateway process is not running'));
        return;
      }
      const id = ++nextId;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, type, ...extra });
    });

  let closing: Promise<void> | undefined;
  const gateway: Gateway = {
    url: `http://localhost:${port}`,
    port,
    pid: child.pid ?? 0,
    keytab,
    requests: () => call<RecordedRequest[]>('requests'),
    secrets: () => call<Record<string, string>>('secrets'),
    setOptions: (o) => call<void>('setOptions', { options: o }),
    reset: () => call<void>('reset'),
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
          await call('close').catch(() => child.kill('SIGTERM'));
          await exited;
          clearTimeout(timer);
        }
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return gateway.close();
    },
  };
  return gateway;
}
