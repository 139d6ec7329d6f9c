/**
 * A third gateway kind: the S3 secret endpoint on the JDK's GSS, as Apache Ozone's S3 Gateway runs
 * it. Real Jetty 9.4 (Debian's libjetty9-java; Ozone 2.0 ships 9.4.57, 2.1+ 9.4.58) set up as
 * Ozone's HttpServer2 sets it up, Hadoop's AuthenticationFilter + KerberosAuthenticationHandler
 * rewritten on org.ietf.jgss (test/support/jdk-gateway/*.java), the secret endpoint as Jersey
 * answers. Same options and request log as the Node gateway (gateway.ts), so a test can run one flow
 * against all three kinds; plus what only the JDK side has: auth_to_local rules, the JDK's enctype
 * policy (no RC4 on JDK 17 unless allow_weak_crypto), Jetty's header size limit, a skewed clock.
 *
 *   await using gw = await startJdkGateway(realm, { admins: ['admin'] });
 *   // curl --negotiate -u : -X PUT ${gw.url}/secret
 *   await using skewed = await startJdkGateway(realm, { clockOffsetSec: 600 });      // 10 min ahead
 *   await using strict = await startJdkGateway(realm, { requestHeaderSize: 8192 });  // Jetty's default
 *
 * What the wire carries is real Jetty 9.4's doing, which differs from the Node gateway's emulation:
 * sendError() on a PUT or DELETE writes no error page (Jetty renders one for GET/POST/HEAD only) and
 * drops Date, Cache-Control, Expires and Content-Type; a header block over requestHeaderSize gets
 * `431 Request Header Fields Too Large` with Jetty's own small HTML body and `Connection: close`; an
 * IOException out of the filter (KerberosName$NoMatchingRule) is a bare `500 Server Error`. Jetty 12's
 * text/plain body form (gateway.ts's errorCodeIn: 'body') is not modelled here.
 *
 * One JVM per gateway, started per test file like om-server.ts: it reads control lines on stdin and
 * halts when stdin closes, so it never outlives the test process; an exit hook SIGKILLs it as well.
 * Throws (never skips) when a JDK 17, libjetty9-java or (for a clock offset) libfaketime is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RecordedRequest } from './gateway.js';
import { clockOffsetEnv } from './jdk-gateway-faketime.js';
import { JAVA_COMMON_SOURCES, buildJava, type JavaBuild } from './java.js';
import { withEnv, type Realm } from './realm.js';

export type { RecordedRequest };

export const JDK_GATEWAY_JAVA_DIR = fileURLToPath(new URL('./jdk-gateway/', import.meta.url));
export const JDK_GATEWAY_DEBIAN_PACKAGES = 'openjdk-17-jdk-headless libjetty9-java';
const JAVA_SOURCES = [
  'GatewayState.java',
  'HadoopNames.java',
  'HadoopAuthFilter.java',
  'SecretServlet.java',
  'JdkGateway.java',
];
const JAR_DIR = '/usr/share/java';
/** Jetty 9.4's server side and the Servlet 3.1+ API, as Debian's libjetty9-java installs them. */
const JARS = [
  'jetty9-server.jar',
  'jetty9-servlet.jar',
  'jetty9-security.jar',
  'jetty9-http.jar',
  'jetty9-io.jar',
  'jetty9-util.jar',
  'servlet-api.jar',
];
/** HttpServer2's hadoop.http.max.request.header.size default (Jetty's own default is 8192). */
export const OZONE_REQUEST_HEADER_SIZE = 65536;
export const JETTY_DEFAULT_REQUEST_HEADER_SIZE = 8192;

/** Options that can change while the gateway runs (setOptions), as in gateway.ts. */
export interface JdkGatewayRuntimeOptions {
  /** S3 admins: short names (ozone.s3.administrators), full principals, or '*' for everyone. */
  admins?: string[];
  /** Ozone 2.x with authorization on: S3SecretAdminFilter guards every form, even one's own. */
  adminOnly?: boolean;
  /** ozone.s3g.secret.http.enabled=false: no auth filter, 400 with body `S3 Secret endpoint is disabled.` */
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
  /** The secret a user gets on their next PUT; else 64 random hex chars. */
  presetSecrets?: Record<string, string>;
  /** Secrets that exist from the start (a PUT for these users answers S3_SECRET_ALREADY_EXISTS). */
  existingSecrets?: Record<string, string>;
  /** Artificial latency per request to the endpoint, in ms. */
  latencyMs?: number;
}

export interface JdkGatewayOptions extends JdkGatewayRuntimeOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Service principals in the gateway's keytab (created when missing); default ['HTTP/localhost']. */
  servicePrincipals?: string[];
  /**
   * kerberos.principal: the SPNEGO principal(s) the handler accepts for, or '*' for every HTTP/*
   * of servicePrincipals (Hadoop's '*'). Default: the first service principal, as Ozone configures
   * one (ozone.s3g.http.auth.kerberos.principal = HTTP/_HOST@REALM).
   */
  principal?: string;
  /**
   * How the server subject gets its keys: 'keytab' (default; Hadoop 3.x puts KeyTab + principals
   * in a Subject, no login) or 'jaas' (a Krb5LoginModule login per principal, isInitiator=false, as
   * Hadoop 2.x did).
   */
  login?: 'keytab' | 'jaas';
  /** hadoop.security.auth_to_local (kerberos.name.rules); default 'DEFAULT'. */
  nameRules?: string;
  /** hadoop.security.auth_to_local.mechanism; default 'hadoop' (a short name may not hold '/' or '@'). */
  ruleMechanism?: 'hadoop' | 'mit';
  /**
   * The gateway's krb5.conf default_realm (the realm the DEFAULT rule maps), default the realm's own.
   * Another value makes the realm's users foreign to it, as users of a trusted realm are.
   */
  defaultRealm?: string;
  /** More [libdefaults] for the JDK, e.g. { allow_weak_crypto: 'true' } to accept RC4 again. */
  libdefaults?: Record<string, string>;
  /** hadoop.http.max.request.header.size; default 65536 (HttpServer2). Jetty's own default is 8192. */
  requestHeaderSize?: number;
  /** hadoop.http.max.response.header.size; default 65536. */
  responseHeaderSize?: number;
  /** The JVM's wall clock this many seconds ahead (libfaketime); also its Date header. */
  clockOffsetSec?: number;
  /** -Dsun.security.krb5.debug=true -Dsun.security.jgss.debug=true (output in stderr()). */
  debug?: boolean;
  startTimeoutMs?: number;
}

export interface JdkGateway extends AsyncDisposable {
  /** http://localhost:<port> (the host name the SPNEGO service principal is for). */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly keytab: string;
  /** The principals the handler accepts for (kerberos.principal, '*' expanded). */
  readonly principals: string[];
  /** The krb5.conf the JVM reads (java.security.krb5.conf). */
  readonly krb5Conf: string;
  /** The JDK's default realm, as the DEFAULT auth_to_local rule sees it. */
  readonly defaultRealm: string;
  /** Jetty's version string, e.g. 9.4.57.v20241219. */
  readonly jetty: string;
  readonly java: string;
  readonly build: JavaBuild;
  /** JVM spawn until listening, ms. */
  readonly startMs: number;
  requests(): Promise<RecordedRequest[]>;
  secrets(): Promise<Record<string, string>>;
  setOptions(o: Partial<JdkGatewayRuntimeOptions>): Promise<void>;
  /** Clears the request log and the secret store (back to existingSecrets). */
  reset(): Promise<void>;
  /** The JVM's stderr tail (Jetty's log, JDK Kerberos debug output). */
  stderr(): string;
  close(): Promise<void>;
}

function missing(what: string): Error {
  return new Error(
    `${what} not found: the JDK-GSS gateway needs Jetty 9.4. Install the Debian packages: apt-get install ${JDK_GATEWAY_DEBIAN_PACKAGES}`,
  );
}

/** Builds (or finds in .cache/java) the gateway against Debian's Jetty 9.4 jars. */
export function buildJdkGateway(): Promise<JavaBuild> {
  const jars = JARS.map((j) => join(JAR_DIR, j));
  const absent = jars.filter((j) => !existsSync(j));
  if (absent.length > 0) return Promise.reject(missing(absent.join(', ')));
  return buildJava({
    name: 'jdk-gateway',
    sources: [...JAVA_COMMON_SOURCES, ...JAVA_SOURCES.map((f) => join(JDK_GATEWAY_JAVA_DIR, f))],
    classpath: jars,
  });
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

/** The realm's krb5.conf with another default_realm and more [libdefaults], for the JVM only. */
async function gatewayKrb5Conf(realm: Realm, file: string, opts: JdkGatewayOptions): Promise<string> {
  const base = realm.env['KRB5_CONFIG']!;
  if (!opts.defaultRealm && !opts.libdefaults) return base;
  let text = await readFile(base, 'utf8');
  if (opts.defaultRealm) {
    if (!/^\s*default_realm\s*=.*$/m.test(text)) throw new Error(`${base} has no default_realm line`);
    text = text.replace(/^(\s*default_realm\s*=).*$/m, `$1 ${opts.defaultRealm}`);
  }
  const extra = Object.entries(opts.libdefaults ?? {}).map(([k, v]) => `  ${k} = ${v}`);
  if (extra.length > 0) text = text.replace(/^\[libdefaults\]\s*$/m, (m) => `${m}\n${extra.join('\n')}`);
  const path = join(realm.dir, file);
  await writeFile(path, text);
  return path;
}

const RUNTIME_KEYS = [
  'admins',
  'adminOnly',
  'disabled',
  'userForm405',
  'mutual',
  'setCookie',
  'cookiePath',
  'cookieValiditySec',
  'presetSecrets',
  'existingSecrets',
  'latencyMs',
] as const;

let gatewayCount = 0;

export async function startJdkGateway(realm: Realm, opts: JdkGatewayOptions = {}): Promise<JdkGateway> {
  const build = await buildJdkGateway();
  const qualify = (p: string) => (p.includes('@') ? p : `${p}@${realm.name}`);
  const servicePrincipals = opts.servicePrincipals ?? ['HTTP/localhost'];
  for (const principal of servicePrincipals) {
    if (!(await realm.hasPrincipal(principal))) await realm.addPrincipal(principal, { randkey: true });
  }
  const n = ++gatewayCount;
  const keytab = await realm.writeKeytab(servicePrincipals, `jdk-gateway-${process.pid}-${n}.keytab`);
  const principals =
    opts.principal === '*'
      ? servicePrincipals.filter((p) => p.startsWith('HTTP/')).map(qualify)
      : [qualify(opts.principal ?? servicePrincipals[0]!)];
  const krb5Conf = await gatewayKrb5Conf(realm, `jdk-gateway-${process.pid}-${n}-krb5.conf`, opts);

  const runtime: Record<string, unknown> = {};
  for (const key of RUNTIME_KEYS) if (opts[key] !== undefined) runtime[key] = opts[key];
  const config = {
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    keytab,
    principals,
    login: opts.login ?? 'keytab',
    nameRules: opts.nameRules ?? 'DEFAULT',
    ruleMechanism: opts.ruleMechanism ?? 'hadoop',
    requestHeaderSize: opts.requestHeaderSize ?? OZONE_REQUEST_HEADER_SIZE,
    responseHeaderSize: opts.responseHeaderSize ?? 65536,
    debug: opts.debug ?? false,
    options: runtime,
  };
  const jvmArgs = build.jvmArgs([
    `-Djava.security.krb5.conf=${krb5Conf}`,
    ...(opts.debug ? ['-Dsun.security.krb5.debug=true', '-Dsun.security.jgss.debug=true'] : []),
  ]);
  const env = withEnv(realm, {
    OZS3_JDKGW_CONFIG: JSON.stringify(config),
    ...(opts.clockOffsetSec !== undefined ? clockOffsetEnv(opts.clockOffsetSec) : {}),
  });
  // The acceptor reads its keys from the keytab only; keep the realm's ccache and keytab defaults out.
  delete env['KRB5CCNAME'];
  delete env['KRB5_KTNAME'];

  const started = performance.now();
  installExitHook();
  const child = spawn(build.java, [...jvmArgs, 'ozs3.jdkgw.JdkGateway'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
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
    stderr = (stderr + chunk).slice(-40_000);
  });

  interface Ready {
    type: 'ready';
    pid: number;
    port: number;
    defaultRealm: string;
    jetty: string;
    java: string;
  }
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let onReady: ((msg: Ready) => void) | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let msg: { type?: string; id?: number; ok?: boolean; result?: unknown; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      stderr = (stderr + `\n[stdout] ${line}`).slice(-40_000);
      return;
    }
    if (msg.type === 'ready') {
      onReady?.(msg as Ready);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.ok) waiter.resolve(msg.result);
    else waiter.reject(new Error(`JDK gateway: ${msg.error ?? 'error'}`));
  });
  void exited.then(() => {
    for (const waiter of pending.values()) waiter.reject(new Error(`JDK gateway exited: ${stderr.slice(-2000)}`));
    pending.clear();
  });

  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  let ready: Ready;
  try {
    ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`JDK gateway not ready within ${timeoutMs} ms: ${stderr}`)),
        timeoutMs,
      );
      onReady = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`JDK gateway exited before it was ready (exit ${String(child.exitCode)}): ${stderr}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  const startMs = performance.now() - started;

  let nextId = 0;
  const call = <T>(op: string, extra: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`JDK gateway is not running: ${stderr.slice(-2000)}`));
        return;
      }
      const id = ++nextId;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.stdin.write(`${JSON.stringify({ id, op, ...extra })}\n`);
    });

  let closing: Promise<void> | undefined;
  const gateway: JdkGateway = {
    url: `http://localhost:${ready.port}`,
    port: ready.port,
    pid: child.pid ?? 0,
    keytab,
    principals,
    krb5Conf,
    defaultRealm: ready.defaultRealm,
    jetty: ready.jetty,
    java: ready.java,
    build,
    startMs,
    requests: () => call<RecordedRequest[]>('requests'),
    secrets: () => call<Record<string, string>>('secrets'),
    setOptions: (o) => call<void>('setOptions', { options: o }),
    reset: () => call<void>('reset'),
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
      return gateway.close();
    },
  };
  return gateway;
}

export const WIRE_SCRIPT = fileURLToPath(new URL('./jdk-gateway/wire.mjs', import.meta.url));

/** One exchange as it crossed the socket (see jdk-gateway/wire.mjs). */
export interface WireAnswer {
  statusLine: string;
  status: number;
  /** The reason phrase, exactly as sent ('' when none). */
  reason: string;
  /** Headers in order, names as sent. */
  headers: [string, string][];
  body: string;
  /** Length of the base64 Negotiate token sent (0: no Authorization header). */
  tokenBase64: number;
}

export interface WireRequest {
  method?: string;
  url: string;
  /** GSS host-based service for the token, e.g. HTTP@localhost; null: no Authorization header. */
  service: string | null;
  cookie?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Sends one request with a fresh SPNEGO token from `env`'s ccache (a subprocess: the kerberos
 * library reads KRB5_* at first use) and returns the answer byte for byte, reason phrase included.
 */
export function wireExchange(env: Record<string, string>, request: WireRequest): Promise<WireAnswer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WIRE_SCRIPT, JSON.stringify(request)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`wire.mjs exited ${String(code)}: ${err.trim()}`));
      else resolve(JSON.parse(out) as WireAnswer);
    });
  });
}

/** A header's values (case-insensitive name), in order. */
export function wireHeaders(answer: WireAnswer, name: string): string[] {
  return answer.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** The answer as text: status line, headers, blank line, body (a long Negotiate token shortened). */
export function formatWire(answer: WireAnswer): string {
  const shown = answer.headers.map(([n, v]) => {
    const m = /^(Negotiate) (\S{40})\S+$/.exec(v);
    return `${n}: ${m ? `${m[1]} ${m[2]}… (${v.length - 10} chars)` : v}`;
  });
  return [answer.statusLine, ...shown, '', answer.body].join('\n');
}
