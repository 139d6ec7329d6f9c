/**
 * A throwaway Active Directory realm for tests: a Samba AD DC (Heimdal KDC, PAC-bearing tickets)
 * in a temp directory, running only its `kdc` service on loopback, with its own smb.conf and
 * krb5.conf. Nothing under /etc is read or written: every Samba tool gets `-s <dir>/samba/etc/smb.conf`
 * and every Kerberos tool gets the realm env (KRB5_CONFIG, KRB5CCNAME, ...), as in realm.ts.
 *
 *   await using realm = await startAdRealm();
 *   const cc = await realm.kinit('alice');                       // a template user, password known
 *   await using gw = await startGateway(realm);                  // HTTP/localhost, AES keytab
 *   await realm.addPrincipal('HTTP/rc4host', { randkey: true, encTypes: 'rc4' });
 *   await realm.kinit('carol.smith@corp.example', { enterprise: true, canonicalize: true });
 *
 * It implements realm.ts's `Realm`, so startGateway() and startApacheGateway() work unchanged:
 * addPrincipal('HTTP/host') creates a service account (a user with that servicePrincipalName and,
 * as `ktpass` does, the same userPrincipalName), writeKeytab() runs `samba-tool domain exportkeytab`.
 *
 * Speed: provisioning a domain and filling it (users, 650 groups) happens once per Samba version and
 * per version of this file, into a template under the repo's .cache/ad-realm/ (built in a temp dir
 * and renamed into place, under a lock dir, so parallel vitest workers build it once); each realm is
 * a `cp -a` of that template with a fresh smb.conf. All paths Samba uses live in smb.conf, none in
 * its databases, so copies share nothing but the template's keys (same domain SID and krbtgt key).
 *
 * Samba runs as `samba -F -M single --no-process-group` under daemon.ts's guard (it dies with the
 * test process), bound (`bind interfaces only`) to one loopback address with free ports for the
 * KDC and kpasswd: never port 88, never another test file's KDC.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, type Daemon } from './daemon.js';
import {
  cacheEnv,
  withEnv,
  type AddPrincipalOptions,
  type KinitOptions,
  type Realm,
  type ToolResult,
} from './realm.js';

export { cacheEnv, withEnv };

/** What `msDS-SupportedEncryptionTypes` says: RC4 only (4), AES only (24), a raw value, or no value at all. */
export type EncTypes = 'rc4' | 'aes' | 'unset' | number;
/** Kerberos enctype names as MIT's klist prints them (without its "DEPRECATED:" prefix). */
export type EncTypeName = 'aes256-cts-hmac-sha1-96' | 'aes128-cts-hmac-sha1-96' | 'arcfour-hmac';

export interface AdAddPrincipalOptions extends AddPrincipalOptions {
  /**
   * msDS-SupportedEncryptionTypes of the account. Default for service accounts (names with a '/'):
   * 'aes' (24), as a careful admin sets it; 'unset' reproduces AD's own default for an account
   * without the attribute (RC4 tickets with an AES session key). Users get no value by default.
   */
  encTypes?: EncTypes;
  /** userPrincipalName, e.g. an enterprise UPN 'carol.smith@corp.example'. Default: service accounts
   * get their principal name (as ktpass sets it), users `<name>@<dns domain>` (as samba-tool does). */
  upn?: string | null;
  /** sAMAccountName (≤ 20 characters). Default: the name, or `svc-<service>-<host>` for a service. */
  account?: string;
  /** More servicePrincipalName values. */
  spns?: string[];
  /** Groups (sAMAccountName) the account joins. */
  groups?: string[];
  givenName?: string;
  surname?: string;
}

export interface AdKinitOptions extends KinitOptions {
  /** kinit -C: ask the KDC to canonicalize the client name. */
  canonicalize?: boolean;
  /** kinit -E: the name is an enterprise name (NT-ENTERPRISE), e.g. a UPN with another suffix. */
  enterprise?: boolean;
}

export interface WriteKeytabOptions {
  /**
   * Keep only these enctypes, as `ktpass -crypto` would. Default: the enctypes the account's
   * msDS-SupportedEncryptionTypes allows (all keys when it has no value); 'all' keeps every key.
   */
  enctypes?: EncTypeName[] | 'all';
}

export interface AddGroupsOptions {
  /** Accounts (sAMAccountName, principal or UPN) put in every one of these groups. */
  members?: string[];
  /** AD group scope; all are security groups. Default 'global'. */
  scope?: 'global' | 'universal' | 'domainLocal';
  /** An OU (created when missing) under the domain; default CN=Users. */
  ou?: string;
}

export interface AdAccount {
  dn: string;
  sAMAccountName: string;
  userPrincipalName?: string;
  servicePrincipalNames: string[];
  /** msDS-SupportedEncryptionTypes, or undefined when the account has none. */
  encTypes?: number;
  objectSid: string;
  /** How many groups list the account as a member (direct memberships). */
  memberOfCount: number;
}

export interface ServiceTicket {
  client: string;
  service: string;
  /** Session key enctype. */
  skey: string;
  /** Ticket enctype (the service key's). */
  tkt: string;
}

export interface Krb5ConfOptions {
  /** [domain_realm] entries besides localhost and 127.0.0.1 → realm (which they may override). */
  domainRealm?: Record<string, string>;
  /** More [libdefaults] lines, e.g. { dns_canonicalize_hostname: 'true' }. */
  libdefaults?: Record<string, string>;
  /** More [realms] entries pointing at this KDC, e.g. a lower-case spelling of the realm. */
  realmAliases?: string[];
}

/** The users and groups every AD realm starts with (from the template). */
export interface AdFixtures {
  /** sAMAccountName → password, for alice, bob, admin, csmith and bigpac. */
  passwords: Record<string, string>;
  /** csmith's enterprise UPN (its suffix is registered in uPNSuffixes). */
  enterpriseUpn: string;
  upnSuffix: string;
  /** The user in many groups (large PAC). */
  bigPacUser: string;
  /** The number of groups it is a direct member of (besides Domain Users). */
  bigPacGroups: number;
  /** admin is a member of this (universal) group. */
  adminGroup: string;
}

export interface AdRealm extends Realm {
  /** The loopback address the KDC listens on (kdcPort over TCP and UDP). */
  readonly kdcHost: string;
  readonly kpasswdPort: number;
  /** pid of the samba process. */
  readonly sambaPid: number;
  /** ad.ozs3.test (the realm in lower case). */
  readonly dnsDomain: string;
  /** ADOZS3 */
  readonly netbiosDomain: string;
  /** DC=ad,DC=ozs3,DC=test */
  readonly baseDn: string;
  readonly domainSid: string;
  /** The copy's private smb.conf. */
  readonly smbConf: string;
  /** sam.ldb of this copy. */
  readonly samLdb: string;
  readonly fixtures: AdFixtures;
  /** Milliseconds: template (0 when cached), copy, samba start. */
  readonly timings: { template: number; copy: number; start: number; templateCached: boolean };
  addPrincipal(name: string, opts?: AdAddPrincipalOptions): Promise<string>;
  writeKeytab(principals: string[], file?: string, opts?: WriteKeytabOptions): Promise<string>;
  kinit(principal: string, opts?: AdKinitOptions): Promise<string>;
  /** The password known for an account (template users and those added with one). */
  passwordOf(name: string): string | undefined;
  account(name: string): Promise<AdAccount | undefined>;
  /** Creates groups in one LDIF (one ldbadd), with members. Returns their DNs. */
  addGroups(names: string[], opts?: AddGroupsOptions): Promise<string[]>;
  /** Adds an account to existing groups, in one ldbmodify. */
  addToGroups(account: string, groups: string[]): Promise<void>;
  setEncTypes(account: string, encTypes: EncTypes): Promise<void>;
  setUpn(account: string, upn: string | null): Promise<void>;
  /** Adds a UPN suffix to CN=Partitions (uPNSuffixes), as "Active Directory Domains and Trusts" does. */
  addUpnSuffix(suffix: string): Promise<void>;
  /** kvno + klist -e: gets a service ticket into the ccache and tells its enctypes. */
  serviceTicket(service: string, opts?: { ccache?: string }): Promise<ServiceTicket>;
  /** klist -ke: the entries of a keytab. */
  keytabEntries(file: string): Promise<{ kvno: number; principal: string; enctype: string }[]>;
  /** ldbsearch on sam.ldb (subtree under base, default the domain): one record per entry. */
  ldbSearch(filter: string, attrs?: string[], base?: string): Promise<Record<string, string[]>[]>;
  ldbModify(ldif: string): Promise<void>;
  ldbAdd(ldif: string): Promise<void>;
  /** samba-tool with this realm's smb.conf (and -H sam.ldb for commands that take it); throws on failure. */
  sambaTool(args: string[]): Promise<ToolResult>;
  /** The realm's krb5.conf text, varied (case 5: realm-case mistakes in [domain_realm]). */
  krb5Conf(opts?: Krb5ConfOptions): string;
  /** Writes krb5Conf(opts) to file (relative to dir) and returns its absolute path. */
  writeKrb5Conf(file: string, opts?: Krb5ConfOptions): Promise<string>;
  /** The tail of samba's log (auth_audit at level 3: one line per Kerberos authentication). */
  log(lines?: number): Promise<string>;
}

export interface StartAdRealmOptions {
  /** Loopback address for the KDC; default 127.0.0.1. Any 127.x.y.z works (Samba takes it as x/8). */
  host?: string;
  /** Extra [domain_realm] entries, as in realm.ts. */
  domainRealm?: Record<string, string>;
  /** Extra smb.conf [global] parameters, e.g. { 'kdc default domain supported enctypes': '24' }. */
  smbConf?: Record<string, string>;
  /** Samba's `server services`; default ['kdc']. */
  services?: string[];
  /** Samba log level (default '1 auth_audit:3'). */
  logLevel?: string;
}

export const AD_REALM = 'AD.OZS3.TEST';
export const AD_DNS_DOMAIN = 'ad.ozs3.test';
export const AD_NETBIOS_DOMAIN = 'ADOZS3';
export const AD_BASE_DN = 'DC=ad,DC=ozs3,DC=test';
const DC_HOST_NAME = 'ozs3dc';
const UPN_SUFFIX = 'corp.example';
const BIG_PAC_USER = 'bigpac';
const BIG_PAC_GROUPS = 650;
const ADMIN_GROUP = 's3-admins';

/** What CI must install. samba-ad-provision holds /usr/share/samba/setup (only a Recommends of samba-ad-dc). */
export const AD_DEBIAN_PACKAGES = 'samba samba-ad-dc samba-ad-provision samba-dsdb-modules ldb-tools krb5-user';
const TOOLS = ['samba', 'samba-tool', 'ldbadd', 'ldbmodify', 'ldbsearch', 'kinit', 'klist', 'kvno', 'ktutil'] as const;
const EXTRA_TOOL_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin'];
const PROVISION_DATA = '/usr/share/samba/setup/ad-schema';

const ENC_BITS: Record<EncTypeName, number> = {
  'arcfour-hmac': 0x4,
  'aes128-cts-hmac-sha1-96': 0x8,
  'aes256-cts-hmac-sha1-96': 0x10,
};
const GROUP_TYPES = { global: -2147483646, universal: -2147483640, domainLocal: -2147483644 } as const;
/** NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD */
const UAC_USER = 0x200 | 0x10000;

const THIS_FILE = fileURLToPath(import.meta.url);
const REPO_ROOT = join(dirname(THIS_FILE), '..', '..');
const CACHE_ROOT = join(REPO_ROOT, '.cache', 'ad-realm');

// ---------------------------------------------------------------------------------------------
// tools

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
  if (!existsSync(PROVISION_DATA)) missing.push(`${PROVISION_DATA} (samba-ad-provision)`);
  if (missing.length > 0) {
    throw new Error(
      `Samba AD DC / MIT Kerberos client tools not found: ${missing.join(', ')}. ` +
        `Install the Debian packages: apt-get install --no-install-recommends ${AD_DEBIAN_PACKAGES}`,
    );
  }
  return found;
}

function runFile(
  file: string,
  args: string[],
  env: Record<string, string>,
  input?: string,
  timeout = 60_000,
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')} failed to run: ${error.message}`));
        return;
      }
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

async function mustRun(
  file: string,
  args: string[],
  env: Record<string, string>,
  input?: string,
  timeout?: number,
): Promise<ToolResult> {
  const result = await runFile(file, args, env, input, timeout);
  if (result.code !== 0) {
    const shown = args.map((a) => (/pass|pw/i.test(a) ? a.replace(/=.*/, '=…') : a)).join(' ');
    throw new Error(`${file} ${shown} exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(-2000)}`);
  }
  return result;
}

/** A minimal env for Samba's own tools: no KRB5_* of the caller, no HOME of the caller. */
function sambaEnv(dir: string, krb5Conf?: string): Record<string, string> {
  const path = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean)];
  for (const d of EXTRA_TOOL_DIRS) if (!path.includes(d)) path.push(d);
  return {
    PATH: path.join(delimiter),
    HOME: dir,
    LANG: 'C',
    // Samba's Heimdal would otherwise read /etc/krb5.conf.
    KRB5_CONFIG: krb5Conf ?? join(dir, 'krb5.conf'),
    KRB5CCNAME: `FILE:${join(dir, 'samba-tool.ccache')}`,
  };
}

// ---------------------------------------------------------------------------------------------
// LDIF

/** An LDIF `attr: value` line, base64 when the value is not a SAFE-STRING (RFC 2849). */
function ldifLine(attr: string, value: string): string {
  return /^[\x21-\x39\x3b\x3d-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value)
    ? `${attr}: ${value}`
    : `${attr}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

/** Escapes an RDN value (RFC 4514). */
function rdnValue(value: string): string {
  return value
    .replace(/[,+"\\<>;=]/g, (c) => `\\${c}`)
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

/** Escapes a value in an LDAP filter (RFC 4515). */
function filterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function unicodePwd(password: string): string {
  return `unicodePwd:: ${Buffer.from(`"${password}"`, 'utf16le').toString('base64')}`;
}

/** Parses ldbsearch output: unfolds lines, decodes base64 values, skips referrals and comments. */
function parseLdif(text: string): Record<string, string[]>[] {
  const records: Record<string, string[]>[] = [];
  for (const block of text.replace(/\r?\n /g, '').split(/\n\s*\n/)) {
    const record: Record<string, string[]> = {};
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([\w;-]+)(::?) ?(.*)$/.exec(line);
      if (!m) continue;
      const value = m[2] === '::' ? Buffer.from(m[3]!, 'base64').toString('utf8') : m[3]!;
      (record[m[1]!] ??= []).push(value);
    }
    if (record['dn']) records.push(record);
  }
  return records;
}

function encTypesValue(encTypes: EncTypes): number | undefined {
  if (encTypes === 'rc4') return 0x4;
  if (encTypes === 'aes') return 0x18;
  if (encTypes === 'unset') return undefined;
  return encTypes;
}

/** A sAMAccountName for a service principal: svc-<service>-<host>, ≤ 20 characters, unique by hash. */
function serviceAccountName(principal: string): string {
  const clean = principal.toLowerCase().replace(/[^a-z0-9.-]+/g, '-');
  const name = `svc-${clean}`;
  if (name.length <= 20) return name;
  const hash = createHash('sha256').update(principal).digest('hex').slice(0, 6);
  return `${name.slice(0, 13)}-${hash}`;
}

// ---------------------------------------------------------------------------------------------
// smb.conf / krb5.conf

interface SambaPaths {
  root: string;
  smbConf: string;
  samLdb: string;
}

function sambaPaths(root: string): SambaPaths {
  return { root, smbConf: join(root, 'etc', 'smb.conf'), samLdb: join(root, 'private', 'sam.ldb') };
}

function smbConfText(
  root: string,
  o: { host: string; krb5Port: number; kpasswdPort: number; services: string[]; logLevel: string },
  extra: Record<string, string> = {},
): string {
  const global: Record<string, string> = {
    'netbios name': DC_HOST_NAME.toUpperCase(),
    workgroup: AD_NETBIOS_DOMAIN,
    realm: AD_REALM,
    'server role': 'active directory domain controller',
    'server services': o.services.join(' '),
    'dcerpc endpoint servers': '',
    // Every path Samba would otherwise take from its build (/var/lib/samba, /run/samba, /etc/samba).
    'private dir': join(root, 'private'),
    'binddns dir': join(root, 'bind-dns'),
    'lock directory': join(root, 'lock'),
    'state directory': join(root, 'state'),
    'cache directory': join(root, 'cache'),
    'pid directory': join(root, 'run'),
    'ncalrpc dir': join(root, 'run', 'ncalrpc'),
    'ntp signd socket directory': join(root, 'run', 'ntp_signd'),
    'winbindd socket directory': join(root, 'run', 'winbindd'),
    'smb passwd file': join(root, 'private', 'smbpasswd'),
    'usershare path': join(root, 'state', 'usershares'),
    'log file': join(root, 'log', 'log.samba'),
    'log level': o.logLevel,
    'max log size': '0',
    // One loopback address, nothing else: `x/8` because Samba only takes bare addresses it finds on an interface.
    interfaces: `${o.host}/8`,
    'bind interfaces only': 'yes',
    'krb5 port': String(o.krb5Port),
    'kpasswd port': String(o.kpasswdPort),
    'tls enabled': 'no',
    'idmap_ldb:use rfc2307': 'yes',
    ...extra,
  };
  const lines = ['# Generated by test/support/ad-realm.ts — a throwaway AD DC, not /etc/samba/smb.conf.', '[global]'];
  for (const [key, value] of Object.entries(global)) lines.push(`\t${key} = ${value}`);
  lines.push(
    '',
    '[sysvol]',
    `\tpath = ${join(root, 'state', 'sysvol')}`,
    '\tread only = No',
    '',
    '[netlogon]',
    `\tpath = ${join(root, 'state', 'sysvol', AD_DNS_DOMAIN, 'scripts')}`,
    '\tread only = No',
    '',
  );
  return lines.join('\n');
}

function krb5ConfText(
  dir: string,
  kdc: string,
  kpasswd: string,
  domainRealm: Record<string, string>,
  o: Krb5ConfOptions = {},
): string {
  const mappings = { localhost: AD_REALM, '127.0.0.1': AD_REALM, ...domainRealm, ...(o.domainRealm ?? {}) };
  const realmBlock = (name: string) => [
    `  ${name} = {`,
    `    kdc = ${kdc}`,
    `    kpasswd_server = ${kpasswd}`,
    `    admin_server = ${kpasswd}`,
    '  }',
  ];
  return [
    '[libdefaults]',
    `  default_realm = ${AD_REALM}`,
    `  default_client_keytab_name = FILE:${join(dir, 'client.keytab')}`,
    '  dns_lookup_kdc = false',
    '  dns_lookup_realm = false',
    '  dns_canonicalize_hostname = false',
    '  rdns = false',
    '  ignore_acceptor_hostname = false',
    // 1 byte: always TCP (an AD ticket with a large PAC does not fit a UDP datagram anyway).
    '  udp_preference_limit = 1',
    '  ticket_lifetime = 10h',
    '  renew_lifetime = 7d',
    '  forwardable = true',
    '  kdc_timesync = 0',
    ...Object.entries(o.libdefaults ?? {}).map(([k, v]) => `  ${k} = ${v}`),
    '',
    '[realms]',
    ...realmBlock(AD_REALM),
    ...(o.realmAliases ?? []).flatMap(realmBlock),
    '',
    '[domain_realm]',
    ...Object.entries(mappings).map(([host, realm]) => `  ${host} = ${realm}`),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// ports

async function freeTcpPort(host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

/** Two distinct ports free on host over TCP and UDP (Samba binds both for the KDC and kpasswd). */
async function freePorts(host: string): Promise<[number, number]> {
  const ports: number[] = [];
  for (let attempt = 0; attempt < 40 && ports.length < 2; attempt++) {
    const port = await freeTcpPort(host);
    if (port > 0 && !ports.includes(port) && (await udpFree(port, host))) ports.push(port);
  }
  if (ports.length < 2) throw new Error(`could not find free ports on ${host} for the Samba KDC`);
  return [ports[0]!, ports[1]!];
}

// ---------------------------------------------------------------------------------------------
// template

interface TemplateInfo {
  version: 1;
  sambaVersion: string;
  domainSid: string;
  fixtures: AdFixtures;
}

let sambaVersionCache: string | undefined;

async function sambaVersion(tools: Record<string, string>): Promise<string> {
  sambaVersionCache ??= (await mustRun(tools['samba']!, ['-V'], sambaEnv(tmpdir()))).stdout.trim();
  return sambaVersionCache;
}

function templateKey(version: string): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return createHash('sha256')
    .update(version)
    .update('\0')
    .update(readFileSync(THIS_FILE))
    .update(`\0uid=${uid}`)
    .digest('hex')
    .slice(0, 16);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The template dir for this Samba and this file: built once (by whichever worker gets the lock
 * dir first; the others wait for the rename), reused by every later realm.
 */
async function ensureTemplate(tools: Record<string, string>): Promise<{ dir: string; ms: number; cached: boolean }> {
  const version = await sambaVersion(tools);
  const key = templateKey(version);
  const finalDir = join(CACHE_ROOT, `tpl-${key}`);
  const infoFile = join(finalDir, 'template.json');
  if (existsSync(infoFile)) return { dir: finalDir, ms: 0, cached: true };
  await mkdir(CACHE_ROOT, { recursive: true });
  const lockDir = join(CACHE_ROOT, `tpl-${key}.lock`);
  const started = performance.now();
  const deadline = Date.now() + 180_000;
  while (!existsSync(infoFile)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the AD template lock ${lockDir}`);
    let locked = false;
    try {
      await mkdir(lockDir);
      locked = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (locked) {
      try {
        await writeFile(join(lockDir, 'owner'), String(process.pid));
        if (!existsSync(infoFile)) await buildTemplate(tools, version, finalDir);
      } finally {
        await rm(lockDir, { recursive: true, force: true });
      }
      pruneOldTemplates(key);
      return { dir: finalDir, ms: performance.now() - started, cached: false };
    }
    // Someone else is building: wait, unless its builder is gone (then take the lock over).
    const owner = Number(await readFile(join(lockDir, 'owner'), 'utf8').catch(() => '0'));
    const age = Date.now() - ((await stat(lockDir).catch(() => undefined))?.mtimeMs ?? Date.now());
    if ((owner > 0 && !alive(owner)) || (owner === 0 && age > 10_000) || age > 150_000) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { dir: finalDir, ms: performance.now() - started, cached: true };
}

/** Removes templates of other versions of this file (or of Samba) once they are a day old. */
function pruneOldTemplates(key: string): void {
  void (async () => {
    for (const entry of await readdir(CACHE_ROOT).catch(() => [] as string[])) {
      if (!entry.startsWith('tpl-') || entry.includes(key)) continue;
      const path = join(CACHE_ROOT, entry);
      const s = await stat(path).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > 86_400_000) await rm(path, { recursive: true, force: true }).catch(() => {});
    }
  })();
}

async function buildTemplate(tools: Record<string, string>, version: string, finalDir: string): Promise<void> {
  const build = mkdtempSync(join(CACHE_ROOT, '.build-'));
  try {
    const root = join(build, 'samba');
    const paths = sambaPaths(root);
    for (const sub of ['etc', 'private', 'lock', 'state', 'cache', 'run', 'log', 'bind-dns']) {
      await mkdir(join(root, sub), { recursive: true, mode: 0o700 });
    }
    // provision reads an existing <targetdir>/etc/smb.conf and never looks at /etc/samba/smb.conf
    // (we also pass -s); it needs the sysvol and netlogon shares in it.
    const confOpts = { host: '127.0.0.1', krb5Port: 88, kpasswdPort: 464, services: ['kdc'], logLevel: '1' };
    await writeFile(paths.smbConf, smbConfText(root, confOpts));
    const env = sambaEnv(build);
    await writeFile(env['KRB5_CONFIG']!, krb5ConfText(build, '127.0.0.1:88', '127.0.0.1:464', {}));
    const samba = (args: string[]) => mustRun(tools['samba-tool']!, [...args, '-s', paths.smbConf], env, '', 120_000);
    const ldb = (tool: 'ldbadd' | 'ldbmodify', ldif: string) =>
      mustRun(tools[tool]!, ['-H', paths.samLdb, `--configfile=${paths.smbConf}`], env, ldif, 120_000);

    const adminPass = `Adm-${randomBytes(12).toString('base64url')}`;
    const provision = samba([
      'domain',
      'provision',
      '--use-rfc2307',
      `--realm=${AD_REALM}`,
      `--domain=${AD_NETBIOS_DOMAIN}`,
      '--server-role=dc',
      '--dns-backend=NONE',
      `--host-name=${DC_HOST_NAME}`,
      `--targetdir=${root}`,
      `--adminpass=${adminPass}`,
    ]);
    await provision.catch((e: Error) => {
      // setsysvolacl chowns sysvol to root: provisioning needs root (or Samba's uid_wrapper).
      const hint =
        typeof process.getuid === 'function' && process.getuid() !== 0
          ? ' — provisioning an AD DC needs root (samba-tool chowns sysvol): run the tests as root, as CI does'
          : '';
      throw new Error(`${e.message}${hint}`);
    });
    // No complexity, no history, no expiry: a template may be weeks old when a test uses it.
    await samba([
      'domain',
      'passwordsettings',
      'set',
      '-H',
      paths.samLdb,
      '--complexity=off',
      '--history-length=0',
      '--min-pwd-age=0',
      '--max-pwd-age=0',
      '--min-pwd-length=0',
    ]);

    const passwords: Record<string, string> = { administrator: adminPass };
    const pw = (user: string) => (passwords[user] = `pw-${user}-${randomBytes(9).toString('base64url')}`);
    const userEntry = (sam: string, upn: string, extra: string[] = []) =>
      [
        `dn: CN=${rdnValue(sam)},CN=Users,${AD_BASE_DN}`,
        'objectClass: user',
        ldifLine('sAMAccountName', sam),
        ldifLine('userPrincipalName', upn),
        `userAccountControl: ${UAC_USER}`,
        ...extra,
        unicodePwd(pw(sam)),
        '',
      ].join('\n');
    const enterpriseUpn = `carol.smith@${UPN_SUFFIX}`;
    const ldif: string[] = [
      userEntry('alice', `alice@${AD_DNS_DOMAIN}`),
      userEntry('bob', `bob@${AD_DNS_DOMAIN}`),
      userEntry('admin', `admin@${AD_DNS_DOMAIN}`),
      // An enterprise UPN in another suffix, and a sAMAccountName unlike it: the canonical name differs.
      userEntry('csmith', enterpriseUpn, ['givenName: Carol', 'sn: Smith', 'displayName: Carol Smith']),
      userEntry(BIG_PAC_USER, `${BIG_PAC_USER}@${AD_DNS_DOMAIN}`),
      [
        `dn: CN=${ADMIN_GROUP},CN=Users,${AD_BASE_DN}`,
        'objectClass: group',
        `sAMAccountName: ${ADMIN_GROUP}`,
        `groupType: ${GROUP_TYPES.universal}`,
        `member: CN=admin,CN=Users,${AD_BASE_DN}`,
        '',
      ].join('\n'),
      [`dn: OU=ozs3-groups,${AD_BASE_DN}`, 'objectClass: organizationalUnit', ''].join('\n'),
    ];
    for (let i = 1; i <= BIG_PAC_GROUPS; i++) {
      const name = `ozs3-g${String(i).padStart(3, '0')}`;
      ldif.push(
        [
          `dn: CN=${name},OU=ozs3-groups,${AD_BASE_DN}`,
          'objectClass: group',
          `sAMAccountName: ${name}`,
          `groupType: ${GROUP_TYPES.global}`,
          `member: CN=${BIG_PAC_USER},CN=Users,${AD_BASE_DN}`,
          '',
        ].join('\n'),
      );
    }
    await ldb('ldbadd', ldif.join('\n'));
    await ldb(
      'ldbmodify',
      [
        `dn: CN=Partitions,CN=Configuration,${AD_BASE_DN}`,
        'changetype: modify',
        'add: uPNSuffixes',
        `uPNSuffixes: ${UPN_SUFFIX}`,
        '',
      ].join('\n'),
    );
    const sid = await mustRun(
      tools['ldbsearch']!,
      ['-H', paths.samLdb, `--configfile=${paths.smbConf}`, '-s', 'base', '-b', AD_BASE_DN, 'objectSid'],
      env,
    );
    const domainSid = parseLdif(sid.stdout)[0]?.['objectSid']?.[0];
    if (!domainSid) throw new Error(`no objectSid on ${AD_BASE_DN}: ${sid.stdout}`);

    // Per-run state that copies must not inherit.
    for (const sub of ['run', 'log']) await rm(join(root, sub), { recursive: true, force: true });
    await rm(env['KRB5_CONFIG']!, { force: true });
    const info: TemplateInfo = {
      version: 1,
      sambaVersion: version,
      domainSid,
      fixtures: {
        passwords,
        enterpriseUpn,
        upnSuffix: UPN_SUFFIX,
        bigPacUser: BIG_PAC_USER,
        bigPacGroups: BIG_PAC_GROUPS,
        adminGroup: ADMIN_GROUP,
      },
    };
    await writeFile(join(build, 'template.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    try {
      await rename(build, finalDir);
    } catch (e) {
      // Another builder won (only possible after a stale-lock takeover): theirs is as good.
      if (!['EEXIST', 'ENOTEMPTY'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      rmSync(build, { recursive: true, force: true });
    }
  } catch (error) {
    rmSync(build, { recursive: true, force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// live realms

const liveSambas = new Map<number, ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [pid, child] of liveSambas) {
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

/** Starts a Samba AD DC (KDC only) from the cached template. Throws (never skips) when Samba is missing. */
export async function startAdRealm(opts: StartAdRealmOptions = {}): Promise<AdRealm> {
  const tools = resolveTools();
  const template = await ensureTemplate(tools);
  const info = JSON.parse(readFileSync(join(template.dir, 'template.json'), 'utf8')) as TemplateInfo;
  const host = opts.host ?? '127.0.0.1';
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) throw new Error(`startAdRealm: host must be a 127.x.y.z address`);

  const dir = mkdtempSync(join(tmpdir(), 'ozs3-adrealm-'));
  liveDirs.add(dir);
  installExitHook();
  try {
    const copyStarted = performance.now();
    await mustRun('/bin/cp', ['-a', join(template.dir, 'samba'), join(dir, 'samba')], sambaEnv(dir));
    const copyMs = performance.now() - copyStarted;
    const paths = sambaPaths(join(dir, 'samba'));
    for (const sub of ['run', 'log']) await mkdir(join(paths.root, sub), { mode: 0o700 });
    await mkdir(join(dir, 'home'), { mode: 0o700 });
    await mkdir(join(dir, 'rcache'), { mode: 0o700 });
    const env: Record<string, string> = {
      KRB5_CONFIG: join(dir, 'krb5.conf'),
      KRB5CCNAME: `FILE:${join(dir, 'ccache')}`,
      KRB5RCACHEDIR: join(dir, 'rcache'),
      // Keep /etc/krb5.keytab out of it (the client keytab default is in krb5.conf).
      KRB5_KTNAME: `FILE:${join(dir, 'default.keytab')}`,
    };
    const services = opts.services ?? ['kdc'];
    const logLevel = opts.logLevel ?? '1 auth_audit:3';
    const probeUser = 'alice';
    const probePassword = info.fixtures.passwords[probeUser]!;

    let lastFailure = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const [krb5Port, kpasswdPort] = await freePorts(host);
      await writeFile(
        paths.smbConf,
        smbConfText(paths.root, { host, krb5Port, kpasswdPort, services, logLevel }, opts.smbConf),
      );
      await writeFile(
        env['KRB5_CONFIG']!,
        krb5ConfText(dir, `${host}:${krb5Port}`, `${host}:${kpasswdPort}`, opts.domainRealm ?? {}),
      );
      const startedAt = performance.now();
      const started = await startDaemon({
        // -l: the log dir before smb.conf is read (else samba creates /var/log/samba/log.samba first).
        command: [
          tools['samba']!,
          '-F',
          '--no-process-group',
          '-M',
          'single',
          '-s',
          paths.smbConf,
          '-l',
          join(paths.root, 'log'),
        ],
        env: sambaEnv(dir, env['KRB5_CONFIG']),
        port: krb5Port,
        host,
        timeoutMs: 20_000,
        logFile: join(paths.root, 'log', 'log.samba'),
      });
      if ('failed' in started) {
        lastFailure = started.failed;
        continue;
      }
      // The port answered — but was it Samba? (A port taken meanwhile makes Samba exit, not wait.)
      const probe = await runFile(
        tools['kinit']!,
        ['-c', `FILE:${join(dir, 'probe.ccache')}`, probeUser],
        withEnv({ env, dir }),
        `${probePassword}\n`,
      );
      await rm(join(dir, 'probe.ccache'), { force: true });
      if (probe.code !== 0) {
        lastFailure = `samba answered on ${host}:${krb5Port} but kinit ${probeUser} failed: ${probe.stderr.trim()}`;
        started.child.stdin?.end();
        try {
          process.kill(started.pid, 'SIGKILL');
        } catch {
          // gone
        }
        await started.exited;
        continue;
      }
      const startMs = performance.now() - startedAt;
      return createAdRealm({
        dir,
        host,
        krb5Port,
        kpasswdPort,
        env,
        tools,
        daemon: started,
        paths,
        info,
        domainRealm: opts.domainRealm ?? {},
        timings: { template: template.ms, copy: copyMs, start: startMs, templateCached: template.cached },
      });
    }
    throw new Error(`could not start samba (AD DC) after 5 attempts: ${lastFailure}`);
  } catch (error) {
    liveDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

interface CreateArgs {
  dir: string;
  host: string;
  krb5Port: number;
  kpasswdPort: number;
  env: Record<string, string>;
  tools: Record<string, string>;
  daemon: Daemon;
  paths: SambaPaths;
  info: TemplateInfo;
  domainRealm: Record<string, string>;
  timings: AdRealm['timings'];
}

function createAdRealm(a: CreateArgs): AdRealm {
  const { dir, env, tools, daemon, paths, info } = a;
  liveSambas.set(daemon.pid, daemon.child);
  const frozenEnv = Object.freeze({ ...env });
  /** Passwords by lower-cased sAMAccountName, principal and UPN. */
  const passwords = new Map<string, string>();
  const remember = (keys: (string | undefined)[], password: string) => {
    for (const k of keys) if (k) passwords.set(k.toLowerCase(), password);
  };
  for (const [sam, password] of Object.entries(info.fixtures.passwords)) {
    remember([sam, `${sam}@${AD_REALM}`, `${sam}@${AD_DNS_DOMAIN}`], password);
  }
  remember([info.fixtures.enterpriseUpn], info.fixtures.passwords['csmith']!);
  let keytabCount = 0;
  let stopped: Promise<void> | undefined;
  const inDir = (file: string): string => (isAbsolute(file) ? file : join(dir, file));
  const toolEnv = (extra: Record<string, string> = {}) => withEnv({ env, dir }, extra);
  const sEnv = sambaEnv(dir, env['KRB5_CONFIG']);

  /** 'alice' → 'alice@AD.OZS3.TEST'; a name with an '@' is kept. */
  const qualify = (p: string): string => (p.includes('@') ? p : `${p}@${AD_REALM}`);
  /** The principal part of a name in this realm, or undefined for a name of another realm / a UPN. */
  const localPart = (p: string): string | undefined => {
    const at = p.lastIndexOf('@');
    if (at < 0) return p;
    return p.slice(at + 1).toUpperCase() === AD_REALM ? p.slice(0, at) : undefined;
  };

  async function run(tool: string, args: string[], o: { input?: string; env?: Record<string, string> } = {}) {
    const path = tools[tool] ?? findTool(tool);
    if (!path) {
      throw new Error(`${tool} not found. Install the Debian packages: apt-get install ${AD_DEBIAN_PACKAGES}`);
    }
    return runFile(path, args, toolEnv(o.env ?? {}), o.input);
  }

  const ldbArgs = () => ['-H', paths.samLdb, `--configfile=${paths.smbConf}`];

  async function ldbSearch(filter: string, attrs: string[] = [], base = AD_BASE_DN) {
    const result = await mustRun(tools['ldbsearch']!, [...ldbArgs(), '-b', base, '-s', 'sub', filter, ...attrs], sEnv);
    return parseLdif(result.stdout);
  }

  async function ldbChange(tool: 'ldbadd' | 'ldbmodify', ldif: string): Promise<void> {
    await mustRun(tools[tool]!, ldbArgs(), sEnv, ldif.endsWith('\n') ? ldif : `${ldif}\n`);
  }

  const ACCOUNT_ATTRS = [
    'sAMAccountName',
    'userPrincipalName',
    'servicePrincipalName',
    'msDS-SupportedEncryptionTypes',
    'objectSid',
    'memberOf',
  ];

  async function findAccount(name: string): Promise<Record<string, string[]> | undefined> {
    const local = localPart(name);
    const clauses =
      local === undefined
        ? [`(userPrincipalName=${filterValue(name)})`]
        : [
            `(sAMAccountName=${filterValue(local)})`,
            `(servicePrincipalName=${filterValue(local)})`,
            `(userPrincipalName=${filterValue(`${local}@${AD_REALM}`)})`,
            `(userPrincipalName=${filterValue(`${local}@${AD_DNS_DOMAIN}`)})`,
          ];
    const found = await ldbSearch(`(&(objectClass=user)(|${clauses.join('')}))`, ACCOUNT_ATTRS);
    if (found.length > 1) {
      throw new Error(`${name} matches ${found.length} accounts: ${found.map((r) => r['dn']![0]).join('; ')}`);
    }
    return found[0];
  }

  async function mustFindAccount(name: string): Promise<Record<string, string[]>> {
    const found = await findAccount(name);
    if (!found) throw new Error(`no AD account for ${name}`);
    return found;
  }

  function toAccount(r: Record<string, string[]>): AdAccount {
    const enc = r['msDS-SupportedEncryptionTypes']?.[0];
    return {
      dn: r['dn']![0]!,
      sAMAccountName: r['sAMAccountName']![0]!,
      ...(r['userPrincipalName'] ? { userPrincipalName: r['userPrincipalName'][0]! } : {}),
      servicePrincipalNames: r['servicePrincipalName'] ?? [],
      ...(enc === undefined ? {} : { encTypes: Number(enc) }),
      objectSid: r['objectSid']?.[0] ?? '',
      memberOfCount: r['memberOf']?.length ?? 0,
    };
  }

  async function groupDns(names: string[]): Promise<Map<string, string>> {
    const wanted = new Set(names.map((n) => n.toLowerCase()));
    const found = new Map<string, string>();
    for (const r of await ldbSearch('(objectClass=group)', ['sAMAccountName'])) {
      const sam = r['sAMAccountName']?.[0];
      if (sam && wanted.has(sam.toLowerCase())) found.set(sam.toLowerCase(), r['dn']![0]!);
    }
    const missing = names.filter((n) => !found.has(n.toLowerCase()));
    if (missing.length > 0) throw new Error(`no such AD group: ${missing.slice(0, 5).join(', ')}`);
    return found;
  }

  async function setAttribute(account: string, attr: string, value: string | undefined): Promise<void> {
    const { dn } = toAccount(await mustFindAccount(account));
    const change =
      value === undefined
        ? [ldifLine('dn', dn), 'changetype: modify', `delete: ${attr}`, '']
        : [ldifLine('dn', dn), 'changetype: modify', `replace: ${attr}`, ldifLine(attr, value), ''];
    const current = await ldbSearch(`(distinguishedName=${filterValue(dn)})`, [attr]);
    if (value === undefined && !current[0]?.[attr]) return;
    await ldbChange('ldbmodify', change.join('\n'));
  }

  async function klistKeytab(file: string) {
    const result = await run('klist', ['-ke', file]);
    if (result.code !== 0) throw new Error(`klist -ke ${file} failed: ${result.stderr.trim()}`);
    const entries: { kvno: number; principal: string; enctype: string }[] = [];
    for (const line of result.stdout.split('\n')) {
      const m = /^\s*(\d+)\s+(\S+)\s+\((?:DEPRECATED:)?([^)]+)\)\s*$/.exec(line);
      if (m) entries.push({ kvno: Number(m[1]), principal: m[2]!, enctype: m[3]! });
    }
    return entries;
  }

  const realm: AdRealm = {
    name: AD_REALM,
    dir,
    kdcPort: a.krb5Port,
    kdcPid: daemon.pid,
    sambaPid: daemon.pid,
    kdcHost: a.host,
    kpasswdPort: a.kpasswdPort,
    dnsDomain: AD_DNS_DOMAIN,
    netbiosDomain: AD_NETBIOS_DOMAIN,
    baseDn: AD_BASE_DN,
    domainSid: info.domainSid,
    smbConf: paths.smbConf,
    samLdb: paths.samLdb,
    fixtures: info.fixtures,
    timings: a.timings,
    env: frozenEnv,
    principal: qualify,
    run,
    ldbSearch,
    ldbModify: (ldif) => ldbChange('ldbmodify', ldif),
    ldbAdd: (ldif) => ldbChange('ldbadd', ldif),

    async sambaTool(args) {
      return mustRun(tools['samba-tool']!, [...args, '-s', paths.smbConf], sEnv);
    },

    passwordOf(name) {
      return passwords.get(name.toLowerCase()) ?? passwords.get(qualify(name).toLowerCase());
    },

    async addPrincipal(principalName, o = {}) {
      if (o.maxLife) throw new Error('addPrincipal: maxLife has no per-account equivalent in AD (a domain policy)');
      const local = localPart(principalName);
      if (local === undefined) throw new Error(`addPrincipal: ${principalName} is not in ${AD_REALM}`);
      const principal = qualify(local);
      const isService = local.includes('/');
      const sam = o.account ?? (isService ? serviceAccountName(local) : local);
      if (sam.length > 20 || /["/\\[\]:;|=,+*?<>@]/.test(sam)) {
        throw new Error(`addPrincipal: '${sam}' is not a valid sAMAccountName (≤ 20 characters); pass { account }`);
      }
      const password = o.randkey ? `Rk-${randomBytes(24).toString('base64url')}` : (o.password ?? `pw-${sam}`);
      const upn = o.upn === undefined ? (isService ? principal : `${sam}@${AD_DNS_DOMAIN}`) : o.upn;
      const encTypes = encTypesValue(o.encTypes ?? (isService ? 'aes' : 'unset'));
      const spns = [...(isService ? [local] : []), ...(o.spns ?? [])];
      const entry = [
        ldifLine('dn', `CN=${rdnValue(sam)},CN=Users,${AD_BASE_DN}`),
        'objectClass: user',
        ldifLine('sAMAccountName', sam),
        ...(upn ? [ldifLine('userPrincipalName', upn)] : []),
        ...spns.map((spn) => ldifLine('servicePrincipalName', spn)),
        ...(encTypes === undefined ? [] : [`msDS-SupportedEncryptionTypes: ${encTypes}`]),
        ...(o.givenName ? [ldifLine('givenName', o.givenName)] : []),
        ...(o.surname ? [ldifLine('sn', o.surname)] : []),
        `userAccountControl: ${UAC_USER}`,
        unicodePwd(password),
        '',
      ];
      await ldbChange('ldbadd', entry.join('\n'));
      if (!o.randkey) remember([sam, principal, upn ?? undefined], password);
      if (o.groups?.length) await realm.addToGroups(sam, o.groups);
      return principal;
    },

    async hasPrincipal(principalName) {
      return (await findAccount(principalName)) !== undefined;
    },

    async account(name) {
      const found = await findAccount(name);
      return found && toAccount(found);
    },

    async writeKeytab(principals, file, o = {}) {
      const path = inDir(file ?? `keytab-${++keytabCount}.keytab`);
      for (const name of principals) {
        const principal = qualify(name);
        const account = toAccount(await mustFindAccount(name));
        const tmp = join(dir, `.export-${randomBytes(6).toString('hex')}.keytab`);
        try {
          await mustRun(
            tools['samba-tool']!,
            ['domain', 'exportkeytab', tmp, `--principal=${principal}`, '-s', paths.smbConf],
            sEnv,
          );
          const entries = await klistKeytab(tmp);
          let keep: Set<string> | undefined;
          if (Array.isArray(o.enctypes)) keep = new Set(o.enctypes);
          else if (o.enctypes !== 'all' && account.encTypes !== undefined && (account.encTypes & 0x1c) !== 0) {
            keep = new Set(
              (Object.keys(ENC_BITS) as EncTypeName[]).filter((e) => (account.encTypes! & ENC_BITS[e]) !== 0),
            );
          }
          const slots = entries.map((e, i) => ({ ...e, slot: i + 1 }));
          const kept = keep ? slots.filter((e) => keep.has(e.enctype)) : slots;
          if (kept.length === 0) {
            throw new Error(
              `writeKeytab: ${principal} has no key of ${[...(keep ?? [])].join(', ')} (it has ${entries.map((e) => e.enctype).join(', ')})`,
            );
          }
          // ktutil: read, delete the unwanted slots from the highest down, append the rest to path.
          const dropped = slots.filter((e) => !kept.includes(e)).map((e) => e.slot);
          const script = [`rkt ${tmp}`, ...dropped.reverse().map((s) => `delent ${s}`), `wkt ${path}`, 'quit', ''];
          if (/\s/.test(tmp + path)) throw new Error(`writeKeytab: no spaces in keytab paths, please (${path})`);
          const kt = await run('ktutil', [], { input: script.join('\n') });
          if (kt.code !== 0 || /ktutil: .*(error|while|not)/i.test(kt.stderr)) {
            throw new Error(`ktutil failed writing ${path}: ${kt.stderr.trim()}`);
          }
        } finally {
          await rm(tmp, { force: true });
        }
      }
      return path;
    },

    async kinit(principalName, o = {}) {
      const principal = o.enterprise ? principalName : qualify(principalName);
      let ccache = frozenEnv['KRB5CCNAME']!;
      if (o.ccache) ccache = /^[A-Z]+:/.test(o.ccache) ? o.ccache : `FILE:${inDir(o.ccache)}`;
      const args = ['-c', ccache];
      if (o.lifetime) args.push('-l', o.lifetime);
      if (o.canonicalize) args.push('-C');
      if (o.enterprise) args.push('-E');
      let input: string | undefined;
      if (o.keytab) {
        args.push('-k', '-t', inDir(o.keytab));
      } else {
        const password = o.password ?? realm.passwordOf(principal);
        if (password === undefined) throw new Error(`kinit ${principal}: give a password or a keytab`);
        input = `${password}\n`;
      }
      args.push(principal);
      const result = await run('kinit', args, input === undefined ? {} : { input });
      if (result.code !== 0) throw new Error(`kinit ${args.join(' ')} failed: ${result.stderr.trim()}`);
      return ccache;
    },

    async addGroups(names, o = {}) {
      const container = o.ou ? `OU=${rdnValue(o.ou)},${AD_BASE_DN}` : `CN=Users,${AD_BASE_DN}`;
      const members: string[] = [];
      for (const m of o.members ?? []) members.push(toAccount(await mustFindAccount(m)).dn);
      const ldif: string[] = [];
      if (o.ou && (await ldbSearch(`(distinguishedName=${filterValue(container)})`)).length === 0) {
        ldif.push([ldifLine('dn', container), 'objectClass: organizationalUnit', ''].join('\n'));
      }
      const dns = names.map((n) => `CN=${rdnValue(n)},${container}`);
      names.forEach((n, i) => {
        ldif.push(
          [
            ldifLine('dn', dns[i]!),
            'objectClass: group',
            ldifLine('sAMAccountName', n),
            `groupType: ${GROUP_TYPES[o.scope ?? 'global']}`,
            ...members.map((m) => ldifLine('member', m)),
            '',
          ].join('\n'),
        );
      });
      if (ldif.length > 0) await ldbChange('ldbadd', ldif.join('\n'));
      return dns;
    },

    async addToGroups(account, groups) {
      const { dn } = toAccount(await mustFindAccount(account));
      const byName = await groupDns(groups);
      const ldif = groups.map((g) =>
        [
          ldifLine('dn', byName.get(g.toLowerCase())!),
          'changetype: modify',
          'add: member',
          ldifLine('member', dn),
          '-',
          '',
        ].join('\n'),
      );
      await ldbChange('ldbmodify', ldif.join('\n'));
    },

    async setEncTypes(account, encTypes) {
      const value = encTypesValue(encTypes);
      await setAttribute(account, 'msDS-SupportedEncryptionTypes', value === undefined ? undefined : String(value));
    },

    async setUpn(account, upn) {
      await setAttribute(account, 'userPrincipalName', upn ?? undefined);
    },

    async addUpnSuffix(suffix) {
      const partitions = `CN=Partitions,CN=Configuration,${AD_BASE_DN}`;
      const current = await ldbSearch('(objectClass=crossRefContainer)', ['uPNSuffixes'], partitions);
      if ((current[0]?.['uPNSuffixes'] ?? []).some((s) => s.toLowerCase() === suffix.toLowerCase())) return;
      await ldbChange(
        'ldbmodify',
        [
          ldifLine('dn', partitions),
          'changetype: modify',
          'add: uPNSuffixes',
          ldifLine('uPNSuffixes', suffix),
          '',
        ].join('\n'),
      );
    },

    async serviceTicket(service, o = {}) {
      const ccache = o.ccache ?? frozenEnv['KRB5CCNAME']!;
      const kvno = await run('kvno', ['-c', ccache, service]);
      if (kvno.code !== 0) throw new Error(`kvno ${service} failed: ${kvno.stderr.trim()}`);
      const list = await run('klist', ['-e', '-c', ccache]);
      if (list.code !== 0) throw new Error(`klist -e failed: ${list.stderr.trim()}`);
      const client = /^Default principal: (.+)$/m.exec(list.stdout)?.[1]?.trim() ?? '';
      const want = qualify(service).toLowerCase();
      const lines = list.stdout.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const fields = lines[i]!.trim().split(/\s+/);
        const name = fields.at(-1) ?? '';
        if (name.toLowerCase() !== want) continue;
        for (const next of lines.slice(i + 1, i + 3)) {
          const m = /Etype \(skey, tkt\): (?:DEPRECATED:)?([^,]+), (?:DEPRECATED:)?(\S+)/.exec(next);
          if (m) return { client, service: name, skey: m[1]!.trim(), tkt: m[2]!.trim() };
        }
      }
      throw new Error(`no ticket for ${service} in klist -e:\n${list.stdout}`);
    },

    keytabEntries: (file) => klistKeytab(inDir(file)),

    krb5Conf(o = {}) {
      return krb5ConfText(dir, `${a.host}:${a.krb5Port}`, `${a.host}:${a.kpasswdPort}`, a.domainRealm, o);
    },

    async writeKrb5Conf(file, o = {}) {
      const path = inDir(file);
      await writeFile(path, realm.krb5Conf(o));
      return path;
    },

    async log(lines = 40) {
      const text = await readFile(join(paths.root, 'log', 'log.samba'), 'utf8').catch(() => '');
      return text.split('\n').slice(-lines).join('\n');
    },

    stop() {
      stopped ??= (async () => {
        // Closing the guard's pipe makes it SIGTERM samba; SIGKILL if it lingers.
        daemon.child.stdin?.end();
        const timer = setTimeout(() => {
          try {
            process.kill(daemon.pid, 'SIGKILL');
          } catch {
            // gone
          }
          daemon.child.kill('SIGKILL');
        }, 3_000);
        await daemon.exited;
        clearTimeout(timer);
        liveSambas.delete(daemon.pid);
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
