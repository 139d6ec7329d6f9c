/**
 * A throwaway MIT Kerberos realm for tests, in the manner of pythongssapi/k5test: a temp directory
 * holding krb5.conf, kdc.conf, the database, stash, logs, keytabs and ccaches, and a `krb5kdc -n`
 * on a free loopback port. Everything is configured through env (KRB5_CONFIG, KRB5_KDC_PROFILE,
 * KRB5CCNAME, ...); nothing under /etc is read or written.
 *
 *   await using realm = await startRealm();
 *   await realm.addPrincipal('alice', { password: 'pw' });
 *   const ccache = await realm.kinit('alice', { password: 'pw' });
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { startDaemon, type Daemon } from './daemon.js';

export interface Realm extends AsyncDisposable {
  readonly name: string;
  readonly dir: string;
  readonly kdcPort: number;
  /** pid of the running krb5kdc (for orphan checks). */
  readonly kdcPid: number;
  /**
   * KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME (FILE:<dir>/ccache), KRB5RCACHEDIR, and KRB5_KTNAME
   * pointing at an (absent) file in dir. The client keytab default is set in krb5.conf instead of
   * KRB5_CLIENT_KTNAME, which ozs3 reads as "log in from this keytab".
   */
  readonly env: Record<string, string>;
  principal(name: string): string;
  addPrincipal(name: string, opts?: AddPrincipalOptions): Promise<string>;
  hasPrincipal(name: string): Promise<boolean>;
  writeKeytab(principals: string[], file?: string): Promise<string>;
  kinit(principal: string, opts?: KinitOptions): Promise<string>;
  /** Runs a realm tool (kinit, klist, kdestroy, kvno, kadmin.local ...) with the realm env. */
  run(tool: string, args: string[], opts?: { input?: string; env?: Record<string, string> }): Promise<ToolResult>;
  stop(): Promise<void>;
}

export interface AddPrincipalOptions {
  password?: string;
  randkey?: boolean;
  /** kadmin time string, e.g. '1 hour'. */
  maxLife?: string;
}

export interface KinitOptions {
  password?: string;
  keytab?: string;
  /** 'FILE:/abs', an absolute path, or a name inside realm.dir. Default: the realm's default ccache. */
  ccache?: string;
  /** kinit -l value, e.g. '10m'. */
  lifetime?: string;
}

export interface StartRealmOptions {
  name?: string;
  /** Extra [domain_realm] entries (host or .domain → realm). localhost and 127.0.0.1 are always mapped. */
  domainRealm?: Record<string, string>;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

const DEBIAN_PACKAGES = 'krb5-kdc krb5-admin-server krb5-user';
const TOOLS = ['krb5kdc', 'kdb5_util', 'kadmin.local', 'kinit', 'klist', 'kdestroy'] as const;
// Debian puts the KDC tools in sbin, which is often missing from a non-root PATH.
const EXTRA_TOOL_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin'];

const liveKdcs = new Map<number, ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/** Kills every KDC this process started, and removes their dirs, even if a test forgot to dispose. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [pid, child] of liveKdcs) {
      for (const kill of [() => process.kill(pid, 'SIGKILL'), () => child.kill('SIGKILL')]) {
        try {
          kill();
        } catch {
          // already gone
        }
      }
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

function findTool(tool: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_TOOL_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, tool);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function resolveTools(): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const tool of TOOLS) {
    const path = findTool(tool);
    if (path) found[tool] = path;
    else missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(
      `MIT Kerberos tools not found: ${missing.join(', ')}. Install the Debian packages: apt-get install ${DEBIAN_PACKAGES}`,
    );
  }
  return found;
}

/** The env for any subprocess that should live in the realm: PATH, HOME, LANG, the realm env and extra — nothing else. */
export function withEnv(realm: Pick<Realm, 'env' | 'dir'>, extra: Record<string, string> = {}): Record<string, string> {
  const path = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean)];
  for (const dir of EXTRA_TOOL_DIRS) if (!path.includes(dir)) path.push(dir);
  return {
    PATH: path.join(delimiter),
    HOME: join(realm.dir, 'home'),
    LANG: 'C',
    ...realm.env,
    ...extra,
  };
}

/**
 * The env of a ticket-cache user in the realm: KRB5CCNAME set, KRB5_CLIENT_KTNAME empty (to ozs3 a
 * non-empty one means a keytab login).
 */
export function cacheEnv(
  realm: Pick<Realm, 'env' | 'dir'>,
  ccache: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return withEnv(realm, { KRB5CCNAME: ccache, KRB5_CLIENT_KTNAME: '', ...extra });
}

function runFile(file: string, args: string[], env: Record<string, string>, input?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env, timeout: 20_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`${file} ${args.join(' ')} failed to run: ${error.message}`));
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
    // A tool that exits before reading its stdin must not crash the test with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

/** A free loopback port, free on both TCP and UDP (the KDC listens on both). */
async function findFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (port > 0 && udpFree) return port;
  }
  throw new Error('could not find a free loopback port for the KDC');
}

function krb5Conf(name: string, port: number, domainRealm: Record<string, string>, dir: string): string {
  const mappings = { localhost: name, '127.0.0.1': name, ...domainRealm };
  return [
    '[libdefaults]',
    `  default_realm = ${name}`,
    // Not /etc/krb5/user/<uid>/client.keytab: nothing of the host's is consulted.
    `  default_client_keytab_name = FILE:${join(dir, 'client.keytab')}`,
    '  dns_lookup_kdc = false',
    '  dns_lookup_realm = false',
    '  dns_canonicalize_hostname = false',
    '  rdns = false',
    '  ignore_acceptor_hostname = false',
    // 1 byte: always TCP, so a test never depends on UDP fragment handling.
    '  udp_preference_limit = 1',
    '  ticket_lifetime = 24h',
    '  renew_lifetime = 7d',
    '  forwardable = true',
    '  kdc_timesync = 0',
    '',
    '[realms]',
    `  ${name} = {`,
    `    kdc = 127.0.0.1:${port}`,
    '  }',
    '',
    '[domain_realm]',
    ...Object.entries(mappings).map(([host, realm]) => `  ${host} = ${realm}`),
    '',
  ].join('\n');
}

function kdcConf(name: string, port: number, dir: string): string {
  return [
    '[kdcdefaults]',
    `  kdc_listen = 127.0.0.1:${port}`,
    `  kdc_tcp_listen = 127.0.0.1:${port}`,
    '',
    '[realms]',
    `  ${name} = {`,
    `    database_name = ${join(dir, 'principal')}`,
    `    key_stash_file = ${join(dir, 'stash')}`,
    `    acl_file = ${join(dir, 'kadm5.acl')}`,
    `    kdc_listen = 127.0.0.1:${port}`,
    `    kdc_tcp_listen = 127.0.0.1:${port}`,
    '    max_life = 24h',
    '    max_renewable_life = 7d',
    '  }',
    '',
    '[logging]',
    `  kdc = FILE:${join(dir, 'kdc.log')}`,
    `  admin_server = FILE:${join(dir, 'kadmin.log')}`,
    `  default = FILE:${join(dir, 'krb5lib.log')}`,
    '',
  ].join('\n');
}

/** Starts a fresh realm with its own KDC. Throws (never skips) if the MIT tools are missing. */
export async function startRealm(opts: StartRealmOptions = {}): Promise<Realm> {
  const tools = resolveTools();
  const name = opts.name ?? 'OZS3.TEST';
  const dir = mkdtempSync(join(tmpdir(), 'ozs3-realm-'));
  liveDirs.add(dir);
  installExitHook();
  try {
    await mkdir(join(dir, 'home'), { mode: 0o700 });
    await mkdir(join(dir, 'rcache'), { mode: 0o700 });
    await writeFile(join(dir, 'kadm5.acl'), '');
    const env: Record<string, string> = {
      KRB5_CONFIG: join(dir, 'krb5.conf'),
      KRB5_KDC_PROFILE: join(dir, 'kdc.conf'),
      KRB5CCNAME: `FILE:${join(dir, 'ccache')}`,
      KRB5RCACHEDIR: join(dir, 'rcache'),
      // Keep /etc/krb5.keytab out of it (the client keytab default is in krb5.conf).
      KRB5_KTNAME: `FILE:${join(dir, 'default.keytab')}`,
    };
    const toolEnv = withEnv({ env, dir });

    let kdc: Daemon | undefined;
    let port = 0;
    let lastFailure = '';
    let dbCreated = false;
    for (let attempt = 0; attempt < 5 && !kdc; attempt++) {
      port = await findFreePort();
      await writeFile(env['KRB5_CONFIG']!, krb5Conf(name, port, opts.domainRealm ?? {}, dir));
      await writeFile(env['KRB5_KDC_PROFILE']!, kdcConf(name, port, dir));
      if (!dbCreated) {
        const master = randomBytes(18).toString('base64url');
        const created = await runFile(tools['kdb5_util']!, ['create', '-r', name, '-s', '-P', master], toolEnv);
        if (created.code !== 0) throw new Error(`kdb5_util create failed: ${created.stderr.trim()}`);
        dbCreated = true;
      }
      const started = await startDaemon({
        command: [tools['krb5kdc']!, '-n', '-r', name],
        env: toolEnv,
        port,
        timeoutMs: 5_000,
        logFile: join(dir, 'kdc.log'),
      });
      if ('failed' in started) lastFailure = started.failed;
      else kdc = started;
    }
    if (!kdc) throw new Error(`could not start krb5kdc after 5 attempts: ${lastFailure}`);
    return createRealm(name, dir, port, env, tools, kdc);
  } catch (error) {
    liveDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function createRealm(
  name: string,
  dir: string,
  kdcPort: number,
  env: Record<string, string>,
  tools: Record<string, string>,
  kdc: Daemon,
): Realm {
  liveKdcs.set(kdc.pid, kdc.child);
  const passwords = new Map<string, string>();
  let keytabCount = 0;
  let stopped: Promise<void> | undefined;
  const frozenEnv = Object.freeze({ ...env });
  const qualify = (p: string): string => (p.includes('@') ? p : `${p}@${name}`);
  const inDir = (file: string): string => (isAbsolute(file) ? file : join(dir, file));

  async function run(tool: string, args: string[], o: { input?: string; env?: Record<string, string> } = {}) {
    const path = tools[tool] ?? findTool(tool);
    if (!path) throw new Error(`${tool} not found. Install the Debian packages: apt-get install ${DEBIAN_PACKAGES}`);
    return runFile(path, args, withEnv({ env, dir }, o.env ?? {}), o.input);
  }

  /** kadmin.local exits 0 even when a query fails; the failure is a "cmd: ... while ..." line on stderr. */
  async function kadmin(query: string): Promise<ToolResult> {
    const result = await run('kadmin.local', ['-r', name, '-q', query]);
    const failure = result.stderr.split('\n').find((line) => /^[\w.]+: .+/.test(line));
    if (result.code !== 0 || failure) {
      throw new Error(`kadmin.local -q "${query}" failed: ${(failure ?? result.stderr).trim()}`);
    }
    return result;
  }

  const realm: Realm = {
    name,
    dir,
    kdcPort,
    kdcPid: kdc.pid,
    env: frozenEnv,
    principal: qualify,
    run,
    async addPrincipal(principalName, o = {}) {
      const principal = qualify(principalName);
      const args = ['addprinc'];
      if (o.maxLife) args.push('-maxlife', `"${o.maxLife}"`);
      if (o.randkey) {
        args.push('-randkey');
      } else {
        const password = o.password ?? `pw-${randomBytes(6).toString('hex')}`;
        if (/["\s]/.test(password)) throw new Error('addPrincipal: password must not contain quotes or spaces');
        args.push('-pw', password);
        passwords.set(principal, password);
      }
      args.push(principal);
      await kadmin(args.join(' '));
      return principal;
    },
    async hasPrincipal(principalName) {
      const result = await run('kadmin.local', ['-r', name, '-q', `getprinc ${qualify(principalName)}`]);
      return result.stdout.includes(`Principal: ${qualify(principalName)}`);
    },
    async writeKeytab(principals, file) {
      const path = inDir(file ?? `keytab-${++keytabCount}.keytab`);
      await kadmin(`ktadd -k ${path} -norandkey ${principals.map(qualify).join(' ')}`);
      return path;
    },
    async kinit(principalName, o = {}) {
      const principal = qualify(principalName);
      let ccache = frozenEnv['KRB5CCNAME']!;
      if (o.ccache) ccache = /^[A-Z]+:/.test(o.ccache) ? o.ccache : `FILE:${inDir(o.ccache)}`;
      const args = ['-c', ccache];
      if (o.lifetime) args.push('-l', o.lifetime);
      let input: string | undefined;
      if (o.keytab) {
        args.push('-k', '-t', inDir(o.keytab));
      } else {
        const password = o.password ?? passwords.get(principal);
        if (password === undefined) throw new Error(`kinit ${principal}: give a password or a keytab`);
        input = `${password}\n`;
      }
      args.push(principal);
      const result = await run('kinit', args, input === undefined ? {} : { input });
      if (result.code !== 0) throw new Error(`kinit ${principal} failed: ${result.stderr.trim()}`);
      return ccache;
    },
    stop() {
      stopped ??= (async () => {
        kdc.child.stdin?.end();
        const timer = setTimeout(() => {
          try {
            process.kill(kdc.pid, 'SIGKILL');
          } catch {
            // gone
          }
          kdc.child.kill('SIGKILL');
        }, 2_000);
        await kdc.exited;
        clearTimeout(timer);
        liveKdcs.delete(kdc.pid);
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return realm.stop();
    },
  };
  return realm;
}
