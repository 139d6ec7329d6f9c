/**
 * An independent SPNEGO acceptor for the Ozone `/secret` contract: Apache httpd + mod_auth_gssapi
 * does the Kerberos/SPNEGO acceptance (and sends the mutual-auth `WWW-Authenticate: Negotiate
 * <token>` itself), and ozone-secret.cgi.py (Python stdlib) implements docs/endpoint.md
 * behind it. Nothing here shares code with the project's own gateway-server.mjs (Node `kerberos`).
 *
 *   await using gw = await startApacheGateway(realm, { admins: ['admin'] });
 *   // curl --negotiate -u : -X PUT ${gw.url}/secret
 *
 * Everything lives in a temp dir inside realm.dir: httpd.conf, the service keytab (a copy),
 * logs, pid file, mutexes, the replay cache, the CGI and its JSON store. Debian's apache2.conf and
 * envvars are never read. As root, httpd's children run as nobody (#65534), so that dir and the
 * files they need are handed to that uid; as any other user, httpd simply runs as that user.
 * Throws (never skips) when apache2 or mod_auth_gssapi is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { clockOffsetEnv } from './jdk-gateway-faketime.js';
import { withEnv, type Realm } from './realm.js';
import { killDaemon, startDaemon, type Daemon } from './daemon.js';

export interface ApacheGatewayOptions {
  /** S3 admins (ozone.s3.administrators): full principals or short names; '*' means everyone. */
  admins?: string[];
  /** Service principals put in Apache's keytab; default ['HTTP/localhost'] (created when missing). */
  servicePrincipals?: string[];
  /**
   * httpd's LimitRequestFieldSize; default httpd's own (8190 bytes), which refuses with 400 the
   * ~8.8 KB `Authorization: Negotiate` header of an AD user in ~650 groups (large PAC).
   */
  limitRequestFieldSize?: number;
  /**
   * Pass `%2F` in paths through (`AllowEncodedSlashes NoDecode`, default true), or refuse it with
   * 404 as a stock httpd does (false).
   */
  encodedSlashes?: boolean;
  /**
   * httpd's wall clock this many seconds off (libfaketime; Debian libfaketime), e.g. 600 for a
   * gateway 10 minutes ahead: mod_auth_gssapi then judges client authenticators as skewed.
   * Default: the real clock.
   */
  clockOffsetSec?: number;
}

/** One line of the CGI's own log: every request that got past mod_auth_gssapi. */
export interface CgiLogEntry {
  method: string;
  uri: string;
  caller: string;
  user?: string;
  status: string;
  time: number;
}

export interface ApacheGateway extends AsyncDisposable {
  /** http://localhost:<port> (the host name of the HTTP/localhost service principal). */
  readonly url: string;
  readonly port: number;
  /** pid of the httpd parent. */
  readonly pid: number;
  /** The temp dir holding httpd.conf, logs, the keytab copy and the store. */
  readonly dir: string;
  readonly keytab: string;
  readonly storePath: string;
  /** The secret store as the CGI sees it: {user: secret}. */
  secrets(): Promise<Record<string, string>>;
  /** Replaces the store (for setting up state); keeps the file's owner so the CGI can still write it. */
  setSecrets(data: Record<string, string>): Promise<void>;
  /**
   * httpd's access log: `METHOD URI+QUERY STATUS REMOTE_USER` per request, 401 challenges included;
   * httpd's own dummy connections left out.
   */
  accessLog(): Promise<string[]>;
  /** The CGI's log of authenticated requests it handled. */
  cgiLog(): Promise<CgiLogEntry[]>;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

const DEBIAN_PACKAGES = 'apache2 libapache2-mod-auth-gssapi';
const HTTPD_CANDIDATES = ['/usr/sbin/apache2', '/usr/sbin/httpd', '/usr/local/apache2/bin/httpd'];
const MODULE_DIRS = ['/usr/lib/apache2/modules', '/usr/lib64/httpd/modules', '/usr/local/apache2/modules'];
const PYTHON = '/usr/bin/python3';
/** nobody/nogroup: httpd refuses to serve as root, so its children switch to this when we are root. */
const RUN_AS_ID = 65534;

export const CGI_SOURCE_PATH = fileURLToPath(new URL('./ozone-secret.cgi.py', import.meta.url));

const liveServers = new Map<number, ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    // SIGTERM, not SIGKILL: httpd then stops its prefork children too (a killed parent orphans them).
    for (const [pid, child] of liveServers) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      child.stdin?.end();
    }
  });
}

interface Installation {
  httpd: string;
  moduleDir: string;
}

function findInstallation(): Installation {
  const httpd = HTTPD_CANDIDATES.find((p) => existsSync(p));
  const moduleDir = MODULE_DIRS.find((d) => existsSync(join(d, 'mod_auth_gssapi.so')));
  const missing: string[] = [];
  if (!httpd) missing.push('apache2 (httpd binary)');
  if (!moduleDir) missing.push('mod_auth_gssapi.so');
  if (!existsSync(PYTHON)) missing.push(PYTHON);
  if (missing.length > 0) {
    throw new Error(
      `Apache httpd with mod_auth_gssapi is needed for the independent-acceptor tests; missing: ${missing.join(', ')}. ` +
        `Install the Debian packages: apt-get install -y ${DEBIAN_PACKAGES} python3`,
    );
  }
  return { httpd: httpd!, moduleDir: moduleDir! };
}

/** Modules compiled into the binary (Debian: core, so, watchdog, http_core, log_config, logio, version, unixd). */
async function staticModules(httpd: string): Promise<Set<string>> {
  const out = await new Promise<string>((resolve) => {
    const child = spawn(httpd, ['-l'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (text += c));
    child.once('error', () => resolve(''));
    child.once('close', () => resolve(text));
  });
  return new Set([...out.matchAll(/^\s*(mod_\w+)\.c\s*$/gm)].map((m) => m[1]!));
}

async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A config value in double quotes, as httpd's tokenizer reads it. */
function q(value: string): string {
  if (/["\n\\]/.test(value)) throw new Error(`unsupported character in httpd.conf value: ${value}`);
  return `"${value}"`;
}

function httpdConf(o: {
  dir: string;
  port: number;
  moduleDir: string;
  loaded: string[];
  asRoot: boolean;
  keytab: string;
  rcacheDir: string;
  cgi: string;
  store: string;
  cgiLog: string;
  admins: string[];
  limitRequestFieldSize?: number | undefined;
  encodedSlashes?: boolean | undefined;
}): string {
  const { dir } = o;
  return [
    "# Generated by test/support/apache-gateway.ts — not Debian's apache2.conf.",
    `ServerRoot ${q(dir)}`,
    `DefaultRuntimeDir ${q(join(dir, 'run'))}`,
    `PidFile ${q(join(dir, 'run', 'httpd.pid'))}`,
    `Mutex file:${join(dir, 'run')} default`,
    ...o.loaded.map((m) => `LoadModule ${m}_module ${q(join(o.moduleDir, `mod_${m}.so`))}`),
    ...(o.asRoot ? [`User #${RUN_AS_ID}`, `Group #${RUN_AS_ID}`] : []),
    `Listen 127.0.0.1:${o.port}`,
    'ServerName localhost',
    'ServerTokens Prod',
    'ServerSignature Off',
    'TraceEnable Off',
    'KeepAlive On',
    'Timeout 20',
    'StartServers 2',
    'MinSpareServers 2',
    'MaxSpareServers 6',
    'MaxRequestWorkers 16',
    ...(o.limitRequestFieldSize ? [`LimitRequestFieldSize ${o.limitRequestFieldSize}`] : []),
    // An Ozone principal such as testuser/scm@EXAMPLE.COM travels as one %2F-encoded segment.
    ...(o.encodedSlashes === false ? [] : ['AllowEncodedSlashes NoDecode']),
    `ErrorLog ${q(join(dir, 'logs', 'error.log'))}`,
    'LogLevel warn auth_gssapi:info',
    'LogFormat "%m %U%q %>s %u" ozs3',
    `CustomLog ${q(join(dir, 'logs', 'access.log'))} ozs3`,
    `DocumentRoot ${q(join(dir, 'htdocs'))}`,
    '<Directory />',
    '  AllowOverride None',
    '  Require all denied',
    '</Directory>',
    // mod_cgi looks PATH_INFO up under DocumentRoot for PATH_TRANSLATED: an empty dir, allowed, so
    // that lookup does not log "client denied" on every /secret/{user} request.
    `<Directory ${q(join(dir, 'htdocs'))}>`,
    '  Require all granted',
    '</Directory>',
    `<Directory ${q(join(dir, 'cgi-bin'))}>`,
    '  Options +ExecCGI',
    '  Require all granted',
    '</Directory>',
    `ScriptAlias /secret ${q(o.cgi)}`,
    '<Location /secret>',
    '  AuthType GSSAPI',
    '  AuthName "Ozone S3 secret"',
    `  GssapiCredStore keytab:${o.keytab}`,
    '  GssapiAllowedMech krb5',
    '  GssapiBasicAuth Off',
    '  GssapiLocalName Off',
    '  Require valid-user',
    `  SetEnv OZS3_STORE ${q(o.store)}`,
    `  SetEnv OZS3_LOG ${q(o.cgiLog)}`,
    `  SetEnv OZS3_ADMINS ${q(o.admins.join(','))}`,
    '</Location>',
    '',
  ].join('\n');
}

let gatewayCount = 0;

export async function startApacheGateway(realm: Realm, opts: ApacheGatewayOptions = {}): Promise<ApacheGateway> {
  const install = findInstallation();
  const statics = await staticModules(install.httpd);
  const wanted = [
    'mpm_prefork',
    'unixd',
    'log_config',
    'authn_core',
    'authz_core',
    'authz_user',
    'auth_gssapi',
    'alias',
    'env',
    'cgi',
  ];
  const loaded = wanted.filter((m) => !statics.has(`mod_${m}`));
  for (const m of loaded) {
    if (!existsSync(join(install.moduleDir, `mod_${m}.so`))) {
      throw new Error(
        `Apache module mod_${m}.so not found in ${install.moduleDir}. Install the Debian packages: apt-get install -y ${DEBIAN_PACKAGES}`,
      );
    }
  }

  const servicePrincipals = opts.servicePrincipals ?? ['HTTP/localhost'];
  for (const principal of servicePrincipals) {
    if (!(await realm.hasPrincipal(principal))) await realm.addPrincipal(principal, { randkey: true });
  }

  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const dir = await mkdtemp(join(realm.dir, `apache-${++gatewayCount}-`));
  for (const sub of ['run', 'logs', 'htdocs', 'cgi-bin', 'rcache']) await mkdir(join(dir, sub), { mode: 0o700 });
  const keytab = await realm.writeKeytab(servicePrincipals, join(dir, 'http.keytab'));
  const cgi = join(dir, 'cgi-bin', 'ozone-secret.cgi');
  await copyFile(CGI_SOURCE_PATH, cgi);
  await chmod(cgi, 0o755);
  const storePath = join(dir, 'secrets.json');
  await writeFile(storePath, '{}\n', { mode: 0o600 });
  const cgiLogPath = join(dir, 'logs', 'cgi.jsonl');
  await writeFile(cgiLogPath, '', { mode: 0o600 });
  // Apache's children read KRB5_CONFIG: a private copy, so they never need to look into realm.dir.
  const krb5Conf = join(dir, 'krb5.conf');
  await copyFile(realm.env['KRB5_CONFIG']!, krb5Conf);

  if (asRoot) {
    // httpd's children (and the CGI) run as nobody: hand them this dir. realm.dir itself is 0700,
    // so it gets o+x (traverse only, no listing) for them to reach it.
    const realmMode = (await stat(realm.dir)).mode & 0o777;
    await chmod(realm.dir, realmMode | 0o001);
    await chmod(dir, 0o700);
    await chownTree(dir, RUN_AS_ID, RUN_AS_ID);
  }

  const env = withEnv(realm, {
    KRB5_CONFIG: krb5Conf,
    KRB5_KTNAME: `FILE:${keytab}`,
    KRB5RCACHEDIR: join(dir, 'rcache'),
    KRB5CCNAME: `FILE:${join(dir, 'run', 'httpd.ccache')}`,
    ...(opts.clockOffsetSec !== undefined ? clockOffsetEnv(opts.clockOffsetSec) : {}),
  });
  delete env['KRB5_CLIENT_KTNAME'];
  delete env['KRB5_KDC_PROFILE'];

  let lastFailure = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const confPath = join(dir, 'httpd.conf');
    await writeFile(
      confPath,
      httpdConf({
        dir,
        port,
        moduleDir: install.moduleDir,
        loaded,
        asRoot,
        keytab,
        rcacheDir: join(dir, 'rcache'),
        cgi,
        store: storePath,
        cgiLog: cgiLogPath,
        admins: opts.admins ?? [],
        limitRequestFieldSize: opts.limitRequestFieldSize,
        encodedSlashes: opts.encodedSlashes,
      }),
    );
    const started = await launch(install.httpd, confPath, port, env, join(dir, 'logs', 'error.log'));
    if ('failed' in started) {
      lastFailure = started.failed;
      if (!/Address already in use|could not bind/i.test(lastFailure)) break;
      continue;
    }
    return createHandle(started, port, dir, keytab, storePath, cgiLogPath);
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`Apache httpd (mod_auth_gssapi) did not start: ${lastFailure}`);
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  const s = await stat(path);
  if (!s.isDirectory()) return;
  for (const entry of await readdir(path)) await chownTree(join(path, entry), uid, gid);
}

/**
 * httpd under the daemon guard in its own process group: httpd's prefork MPM, stopping under
 * -DFOREGROUND, sends SIGTERM to its whole group, which would otherwise be vitest's and ours.
 */
async function launch(
  httpd: string,
  confPath: string,
  port: number,
  env: Record<string, string>,
  errorLog: string,
): Promise<Daemon | { failed: string }> {
  const started = await startDaemon({
    command: [httpd, '-f', confPath, '-DFOREGROUND'],
    env,
    port,
    timeoutMs: 10_000,
    logFile: errorLog,
    ownProcessGroup: true,
  });
  if ('child' in started) {
    liveServers.set(started.pid, started.child);
    installExitHook();
  }
  return started;
}

function createHandle(
  launched: Daemon,
  port: number,
  dir: string,
  keytab: string,
  storePath: string,
  cgiLogPath: string,
): ApacheGateway {
  let stopped: Promise<void> | undefined;
  const readLines = async (path: string) =>
    (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
  // httpd logs a request after its response is sent, so a client can be done before its line is
  // written: read until the log has stayed the same for 100 ms (at most 2 s).
  const settledLines = async (path: string) => {
    let lines = await readLines(path);
    for (let stable = 0, waited = 0; stable < 4 && waited < 2000; waited += 25) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      const next = await readLines(path);
      stable = next.length === lines.length ? stable + 1 : 0;
      lines = next;
    }
    return lines;
  };
  const gateway: ApacheGateway = {
    url: `http://localhost:${port}`,
    port,
    pid: launched.pid,
    dir,
    keytab,
    storePath,
    async secrets() {
      const text = await readFile(storePath, 'utf8');
      return text.trim() === '' ? {} : (JSON.parse(text) as Record<string, string>);
    },
    async setSecrets(data) {
      // In place (not rename): the file keeps its owner, so the CGI (nobody, under root) can still write it.
      await writeFile(storePath, `${JSON.stringify(data)}\n`);
    },
    // httpd wakes its idle children with "OPTIONS *" to itself (its dummy connection): not a client's.
    accessLog: async () =>
      (await settledLines(join(dir, 'logs', 'access.log'))).filter((l) => !l.startsWith('OPTIONS * ')),
    async cgiLog() {
      return (await readLines(cgiLogPath)).map((l) => JSON.parse(l) as CgiLogEntry);
    },
    errorLog: () => readFile(join(dir, 'logs', 'error.log'), 'utf8').catch(() => ''),
    stop() {
      stopped ??= (async () => {
        // SIGTERM: httpd stops its children and exits; the guard then exits too.
        try {
          process.kill(launched.pid, 'SIGTERM');
        } catch {
          // already gone
        }
        const timer = setTimeout(() => killDaemon(launched, true), 3_000);
        launched.child.stdin?.end();
        await launched.exited;
        clearTimeout(timer);
        liveServers.delete(launched.pid);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return gateway.stop();
    },
  };
  return gateway;
}
