/**
 * Self-tests of the Active Directory fixture (test/support/ad-realm.ts): a Samba AD DC's Heimdal KDC
 * with PAC-bearing tickets instead of MIT's. The existing gateway fixtures run unchanged against it
 * (Node `kerberos` and Apache mod_auth_gssapi), the built CLI gets, refuses, revokes and logs in
 * from a keytab through both, and the AD behaviours later tests reproduce are pinned here:
 * RC4-only vs AES service accounts, a large PAC, name case and enterprise names.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startAdRealm, type AdRealm } from '../support/ad-realm.js';
import { startApacheGateway, type ApacheGateway } from '../support/apache-gateway.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';

const NEGOTIATE_TOKEN = fileURLToPath(new URL('../support/samba/negotiate-token.mjs', import.meta.url));
const REALM = 'AD.OZS3.TEST';

let realm: AdRealm;
let startMs = 0;
let node: Gateway;
let apache: ApacheGateway;
const cc: Record<string, string> = {};
let svcKeytab: string;

beforeAll(async () => {
  assertBuilt();
  const t0 = performance.now();
  realm = await startAdRealm();
  startMs = performance.now() - t0;
  for (const user of ['alice', 'admin', 'bigpac']) cc[user] = await realm.kinit(user, { ccache: `cc-${user}` });
  await realm.addPrincipal('svc', { randkey: true });
  svcKeytab = await realm.writeKeytab(['svc'], 'svc.keytab');
  // One after the other: both create HTTP/localhost when it is missing.
  node = await startGateway(realm, { admins: ['admin'] });
  apache = await startApacheGateway(realm, { admins: ['admin'] });
});

afterAll(async () => {
  await Promise.all([node?.close(), apache?.stop()]);
  await realm?.stop();
});

/** The env for a ticket-cache user (KRB5_CLIENT_KTNAME empty: ozs3 reads it as keytab login). */
function envFor(ccache: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(realm, ccache, extra);
}

function klistPrincipal(ccache: string): Promise<string> {
  return realm.run('klist', ['-c', ccache]).then((r) => /^Default principal: (.+)$/m.exec(r.stdout)?.[1] ?? r.stderr);
}

function negotiateTokenLength(ccache: string, service = 'HTTP@localhost'): Promise<{ base64: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [NEGOTIATE_TOKEN, service], { env: envFor(ccache) }, (error, stdout, stderr) => {
      if (error) reject(new Error(`negotiate-token: ${stderr || error.message}`));
      else resolve(JSON.parse(stdout) as { base64: number; bytes: number });
    });
  });
}

function curlPut(url: string, ccache: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-s', '-o', '-', '-w', '\n%{http_code}', '--max-time', '10', '--negotiate', '-u', ':', '-X', 'PUT', url],
      { env: envFor(ccache) },
      (error, stdout) => {
        if (error && typeof error.code !== 'number') reject(new Error(error.message, { cause: error }));
        const at = stdout.lastIndexOf('\n');
        resolve({ status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) });
      },
    );
  });
}

describe('the AD realm', () => {
  it('starts from the cached template and says how long it took', () => {
    // Reported, not asserted tightly: cold = provision + 650 groups; warm = cp -a + samba start.
    console.log(
      `AD realm: ${Math.round(startMs)} ms (template ${realm.timings.templateCached ? 'cached' : `built in ${Math.round(realm.timings.template)} ms`}, copy ${Math.round(realm.timings.copy)} ms, samba up ${Math.round(realm.timings.start)} ms) on ${realm.kdcHost}:${realm.kdcPort}`,
    );
    expect(realm.timings.start).toBeLessThan(20_000);
    expect(realm.kdcPort).not.toBe(88);
  });

  it('keeps every Samba path inside its own dir (never /etc, /var, /run, never the template)', () => {
    const conf = readFileSync(realm.smbConf, 'utf8');
    const paths = [...conf.matchAll(/^\s*[\w :]+ = (\/\S*)$/gm)].map((m) => m[1]!);
    expect(paths.length).toBeGreaterThanOrEqual(12);
    for (const path of paths) expect(path.startsWith(`${realm.dir}/`), path).toBe(true);
    expect(conf).toMatch(/^\s*server services = kdc$/m);
    expect(conf).toMatch(/^\s*bind interfaces only = yes$/m);
    expect(readFileSync(realm.env['KRB5_CONFIG']!, 'utf8')).toMatch(/^\s*localhost = AD\.OZS3\.TEST$/m);
  });

  it('kinit alice with her password gives a TGT from the Samba KDC, logged by Samba', async () => {
    expect(await klistPrincipal(cc['alice']!)).toBe(`alice@${REALM}`);
    const ccache = await realm.kinit('alice', { ccache: 'cc-alice-again', password: realm.passwordOf('alice')! });
    expect(await klistPrincipal(ccache)).toBe(`alice@${REALM}`);
    await expect(realm.kinit('alice', { ccache: 'cc-wrong', password: 'not-her-password' })).rejects.toThrow(
      /Preauthentication failed|Password incorrect/,
    );
    expect(await realm.log(200)).toMatch(/Auth: \[Kerberos KDC,ENC-TS Pre-authentication\] user .*alice/);
  });

  it('creates HTTP/localhost as a service account: SPN, UPN as ktpass sets it, AES, an AES-only keytab', async () => {
    const account = await realm.account('HTTP/localhost');
    expect(account).toMatchObject({
      sAMAccountName: 'svc-http-localhost',
      userPrincipalName: `HTTP/localhost@${REALM}`,
      servicePrincipalNames: ['HTTP/localhost'],
      encTypes: 24,
    });
    const entries = await realm.keytabEntries(node.keytab);
    expect(entries.map((e) => `${e.principal} ${e.enctype}`).sort()).toEqual([
      `HTTP/localhost@${REALM} aes128-cts-hmac-sha1-96`,
      `HTTP/localhost@${REALM} aes256-cts-hmac-sha1-96`,
    ]);
    // As ktpass's UPN allows: the service can log in as itself from its keytab (JDK GSS isInitiator=true).
    const own = await realm.kinit('HTTP/localhost', { keytab: node.keytab, ccache: 'cc-http' });
    expect(await klistPrincipal(own)).toBe(`HTTP/localhost@${REALM}`);
  });

  it('gives copies no shared state: a user added in one realm is unknown to another on another address', async () => {
    await using other = await startAdRealm({ host: '127.0.0.2' });
    expect(other.kdcHost).toBe('127.0.0.2');
    expect(other.dir).not.toBe(realm.dir);
    await other.addPrincipal('onlyhere', { password: 'pw-onlyhere' });
    expect(await other.hasPrincipal('onlyhere')).toBe(true);
    expect(await realm.hasPrincipal('onlyhere')).toBe(false);
    await other.kinit('onlyhere');
    await expect(realm.kinit('onlyhere', { ccache: 'cc-onlyhere', password: 'pw-onlyhere' })).rejects.toThrow(
      /not found in Kerberos database/,
    );
  });
});

describe('AD helpers', () => {
  it('bulk groups, memberships, enctypes, UPNs and UPN suffixes, straight into sam.ldb', async () => {
    const dns = await realm.addGroups(['grp-a', 'grp-b', 'grp-c'], {
      members: ['bob'],
      ou: 'helpers',
      scope: 'universal',
    });
    expect(dns).toEqual(['grp-a', 'grp-b', 'grp-c'].map((g) => `CN=${g},OU=helpers,${realm.baseDn}`));
    await realm.addGroups(['grp-d']);
    await realm.addToGroups('alice', ['grp-a', 'grp-d']);
    expect((await realm.account('alice'))?.memberOfCount).toBe(2);
    expect((await realm.account('bob'))?.memberOfCount).toBe(3);

    await realm.addPrincipal('HTTP/flip', { randkey: true });
    await realm.setEncTypes('HTTP/flip', 'rc4');
    expect((await realm.account('HTTP/flip'))?.encTypes).toBe(4);
    expect(
      (await realm.serviceTicket('HTTP/flip', { ccache: await realm.kinit('alice', { ccache: 'cc-flip' }) })).tkt,
    ).toBe('arcfour-hmac');
    await realm.setEncTypes('HTTP/flip', 'unset');
    expect((await realm.account('HTTP/flip'))?.encTypes).toBeUndefined();

    await realm.addUpnSuffix('other.example');
    await realm.addUpnSuffix('other.example');
    const [partitions] = await realm.ldbSearch(
      '(objectClass=crossRefContainer)',
      ['uPNSuffixes'],
      `CN=Partitions,CN=Configuration,${realm.baseDn}`,
    );
    expect(partitions?.['uPNSuffixes']?.sort()).toEqual(['corp.example', 'other.example']);
    await realm.addPrincipal('dave', { password: 'pw-dave', upn: 'dave.jones@other.example' });
    expect(await realm.hasPrincipal('dave.jones@other.example')).toBe(true);
    const ccache = await realm.kinit('dave.jones@other.example', {
      enterprise: true,
      canonicalize: true,
      ccache: 'cc-dave',
    });
    expect(await klistPrincipal(ccache)).toBe(`dave@${REALM}`);
    await realm.setUpn('dave', null);
    expect((await realm.account('dave'))?.userPrincipalName).toBeUndefined();
  });
});

describe.each([
  ['Node kerberos gateway', () => node.url],
  ['Apache mod_auth_gssapi gateway', () => apache.url],
])('the built CLI against the %s on AD', (_kind, url) => {
  const ozs3 = (args: string[], env: Record<string, string>): Promise<CliResult> =>
    runCli([...args, '--endpoint', url()], { env });

  it('get (0), again (6), revoke --yes (0), with mutual authentication verified', async () => {
    const get = await ozs3(['getsecret', '-v'], envFor(cc['alice']!));
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^awsAccessKey=alice@${REALM}\\nawsSecret=[0-9a-f]{64}\\n$`));
    expect(get.stderr).toMatch(/mutual authentication verified/);
    const again = await ozs3(['getsecret'], envFor(cc['alice']!));
    expect(again.code, again.stderr).toBe(6);
    expect(again.stderr).toMatch(/S3_SECRET_ALREADY_EXISTS/);
    const revoke = await ozs3(['revokesecret', '--yes'], envFor(cc['alice']!));
    expect(revoke.code, revoke.stderr).toBe(0);
  });

  it('an S3 admin gets bob’s secret with -u bob (0); alice may not (4)', async () => {
    const r = await ozs3(['getsecret', '-u', 'bob'], envFor(cc['admin']!));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^awsAccessKey=bob\nawsSecret=[0-9a-f]{64}\n$/);
    expect((await ozs3(['getsecret', '-u', 'bob'], envFor(cc['alice']!))).code).toBe(4);
    expect((await ozs3(['revokesecret', '-u', 'bob', '--yes'], envFor(cc['admin']!))).code).toBe(0);
  });

  it('logs in from an exported keytab (--keytab, --principal) without a ticket cache', async () => {
    const r = await ozs3(['getsecret', '--json', '--keytab', svcKeytab, '--principal', `svc@${REALM}`], {
      ...cacheEnv(realm, `FILE:${join(realm.dir, 'no-such-cache')}`),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).awsAccessKey).toBe(`svc@${REALM}`);
    expect(readdirSync(realm.dir)).not.toContain('no-such-cache');
  });

  it('doctor: every check ok, the service ticket from the AD KDC, mutual authentication verified', async () => {
    const r = await runCli(['doctor', '--endpoint', url()], { env: envFor(cc['alice']!) });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The plan block first (indented lines), then one line per check.
    const lines = r.stdout
      .trimEnd()
      .split('\n')
      .filter((l) => l !== 'plan:' && !l.startsWith('  '));
    expect(
      lines.filter((l) => !l.startsWith('ok   ') && !l.startsWith('skip admin rule: not checked')),
      r.stdout,
    ).toEqual([]);
    expect(r.stdout).toMatch(new RegExp(`service principal: HTTP/localhost@${REALM}: the KDC issued a service ticket`));
    expect(r.stdout).toMatch(/spnego: .*mutual authentication verified/);
  });
});

describe('case 1: RC4-only vs AES service accounts (msDS-SupportedEncryptionTypes)', () => {
  beforeAll(async () => {
    await realm.addPrincipal('HTTP/rc4host', { randkey: true, encTypes: 'rc4' });
    await realm.addPrincipal('HTTP/aeshost', { randkey: true, encTypes: 'aes' });
    await realm.addPrincipal('HTTP/defhost', { randkey: true, encTypes: 'unset' });
  });

  it('issues RC4 tickets and RC4 keytabs for 4, AES for 24, and AD’s default (RC4 ticket, AES session key) for none', async () => {
    const rc4 = await realm.serviceTicket('HTTP/rc4host', { ccache: cc['alice']! });
    const aes = await realm.serviceTicket('HTTP/aeshost', { ccache: cc['alice']! });
    const def = await realm.serviceTicket('HTTP/defhost', { ccache: cc['alice']! });
    console.log(
      `klist -e (skey, tkt): rc4host ${rc4.skey}, ${rc4.tkt}; aeshost ${aes.skey}, ${aes.tkt}; defhost ${def.skey}, ${def.tkt}`,
    );
    expect([rc4.skey, rc4.tkt]).toEqual(['arcfour-hmac', 'arcfour-hmac']);
    expect([aes.skey, aes.tkt]).toEqual(['aes256-cts-hmac-sha1-96', 'aes256-cts-hmac-sha1-96']);
    expect([def.skey, def.tkt]).toEqual(['aes256-cts-hmac-sha1-96', 'arcfour-hmac']);

    const enctypes = async (p: string) =>
      (await realm.keytabEntries(await realm.writeKeytab([p], `${p.replace('/', '-')}.keytab`))).map((e) => e.enctype);
    expect(await enctypes('HTTP/rc4host')).toEqual(['arcfour-hmac']);
    expect((await enctypes('HTTP/aeshost')).sort()).toEqual(['aes128-cts-hmac-sha1-96', 'aes256-cts-hmac-sha1-96']);
    expect((await enctypes('HTTP/defhost')).sort()).toEqual([
      'aes128-cts-hmac-sha1-96',
      'aes256-cts-hmac-sha1-96',
      'arcfour-hmac',
    ]);
  });

  it('accepts an RC4 ticket end to end (Node gateway with the RC4-only keytab, ozs3 --spn)', async () => {
    await using gw = await startGateway(realm, { servicePrincipals: ['HTTP/rc4host'] });
    expect((await realm.keytabEntries(gw.keytab)).map((e) => e.enctype)).toEqual(['arcfour-hmac']);
    const r = await runCli(['getsecret', '--endpoint', gw.url, '--spn', `HTTP/rc4host@${REALM}`], {
      env: envFor(cc['alice']!),
    });
    expect(r.code, r.stderr).toBe(0);
    expect((await gw.requests()).at(-1)).toMatchObject({ principal: `alice@${REALM}`, status: 200 });
  });

  it('a keytab without the ticket’s enctype fails at the acceptor (AES account, RC4-only keytab)', async () => {
    const rc4Only = await realm.writeKeytab(['HTTP/aeshost'], 'aes-account-rc4-key.keytab', {
      enctypes: ['arcfour-hmac'],
    });
    expect((await realm.keytabEntries(rc4Only)).map((e) => e.enctype)).toEqual(['arcfour-hmac']);
    await using gw = await startGateway(realm, { servicePrincipals: ['HTTP/aeshost'] });
    // The gateway's keytab, replaced by the RC4-only one (the acceptor reads it on every token).
    await copyFile(rc4Only, gw.keytab);
    const r = await runCli(['getsecret', '--endpoint', gw.url, '--spn', `HTTP/aeshost@${REALM}`], {
      env: envFor(cc['alice']!),
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/could not verify your Kerberos token/);
  });
});

describe('case 2: a user in 650 groups (large PAC)', () => {
  it('is in 650 groups, and its Negotiate token is 8–9 KB', async () => {
    const account = await realm.account(realm.fixtures.bigPacUser);
    expect(account?.memberOfCount).toBe(650);
    const big = await negotiateTokenLength(cc['bigpac']!);
    const small = await negotiateTokenLength(cc['alice']!);
    console.log(
      `Negotiate token (base64 chars / bytes): bigpac ${big.base64} / ${big.bytes}; alice ${small.base64} / ${small.bytes}`,
    );
    expect(big.base64).toBeGreaterThan(8_000);
    expect(big.base64).toBeLessThan(9_500);
    expect(small.base64).toBeLessThan(2_500);
  });

  it('passes Node’s 16 KiB header limit, but not Apache’s default 8190-byte LimitRequestFieldSize', async () => {
    const viaNode = await runCli(['getsecret', '--endpoint', node.url], { env: envFor(cc['bigpac']!) });
    expect(viaNode.code, viaNode.stderr).toBe(0);
    const nodeReq = (await node.requests()).at(-1)!;
    expect(nodeReq.principal).toBe(`bigpac@${REALM}`);
    expect(nodeReq.headers['authorization']).toMatch(/^Negotiate <redacted len=(8\d{3}|9[0-4]\d{2})>$/);

    expect((await curlPut(`${apache.url}/secret`, cc['bigpac']!)).status).toBe(400);
    await using roomy = await startApacheGateway(realm, { limitRequestFieldSize: 16_384 });
    const ok = await curlPut(`${roomy.url}/secret`, cc['bigpac']!);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain(`<awsAccessKey>bigpac@${REALM}</awsAccessKey>`);
  });
});

describe('case 3: name case and enterprise names', () => {
  it('kinit Alice@REALM keeps “Alice” unless canonicalized (-C); the gateway sees that name', async () => {
    const typed = await realm.kinit(`Alice@${REALM}`, { ccache: 'cc-Alice' });
    const canon = await realm.kinit(`Alice@${REALM}`, { ccache: 'cc-Alice-C', canonicalize: true });
    const typedName = await klistPrincipal(typed);
    const canonName = await klistPrincipal(canon);
    console.log(`klist: kinit Alice@${REALM} → ${typedName}; kinit -C → ${canonName}`);
    expect(typedName).toBe(`Alice@${REALM}`);
    expect(canonName).toBe(`alice@${REALM}`);
    const r = await runCli(['getsecret', '--json', '--endpoint', node.url], { env: envFor(typed) });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).awsAccessKey).toBe(`Alice@${REALM}`);
  });

  it('kinit -E carol.smith@corp.example is carol.smith\\@corp.example@REALM; with -C, csmith@REALM', async () => {
    const upn = realm.fixtures.enterpriseUpn;
    expect(upn).toBe('carol.smith@corp.example');
    const plain = await realm.kinit(upn, { enterprise: true, ccache: 'cc-carol-E' });
    const canon = await realm.kinit(upn, { enterprise: true, canonicalize: true, ccache: 'cc-carol-CE' });
    const plainName = await klistPrincipal(plain);
    const canonName = await klistPrincipal(canon);
    console.log(`klist: kinit -E ${upn} → ${plainName}; kinit -C -E → ${canonName}`);
    expect(plainName).toBe(`carol.smith\\@corp.example@${REALM}`);
    expect(canonName).toBe(`csmith@${REALM}`);
    // Without -E, the UPN is read as principal "carol.smith" in realm corp.example: no KDC for it.
    await expect(realm.kinit(upn, { ccache: 'cc-carol' })).rejects.toThrow(/Cannot find KDC for realm "corp\.example"/);
    // The ticket carries the name as asked for, so that is what the acceptor (and Ozone) sees.
    for (const [ccache, name] of [
      [plain, `carol.smith\\@corp.example@${REALM}`],
      [canon, `csmith@${REALM}`],
    ] as const) {
      const r = await runCli(['getsecret', '--json', '--endpoint', node.url], { env: envFor(ccache) });
      expect(r.code, r.stderr).toBe(0);
      expect((await node.requests()).at(-1)?.principal).toBe(name);
      expect(JSON.parse(r.stdout).awsAccessKey).toBe(name);
    }
  });
});

describe('case 5: krb5.conf realm-case mistakes', () => {
  it('localhost = ad.ozs3.test: Samba hands out krbtgt/ad.ozs3.test, then the client finds no KDC for that realm', async () => {
    const conf = await realm.writeKrb5Conf('krb5-lower.conf', { domainRealm: { localhost: 'ad.ozs3.test' } });
    expect(readFileSync(conf, 'utf8')).toMatch(/^\s*localhost = ad\.ozs3\.test$/m);
    const ccache = await realm.kinit('alice', { ccache: 'cc-lower' });
    const env = { KRB5_CONFIG: conf };
    const kvno = await realm.run('kvno', ['-c', ccache, '-S', 'HTTP', 'localhost'], { env });
    expect(kvno.code).not.toBe(0);
    expect(kvno.stderr).toMatch(/Cannot find KDC for realm "ad\.ozs3\.test"/);
    // An MIT KDC would refuse that cross-realm TGT; the AD KDC issues it (realms are case-insensitive to it).
    expect((await realm.run('klist', ['-c', ccache], { env })).stdout).toContain(`krbtgt/ad.ozs3.test@${REALM}`);
    // With a [realms] entry for the lower-case spelling too, the KDC answers for its own realm.
    const aliased = await realm.writeKrb5Conf('krb5-lower-aliased.conf', {
      domainRealm: { localhost: 'ad.ozs3.test' },
      realmAliases: ['ad.ozs3.test'],
    });
    const ok = await realm.run('kvno', ['-c', ccache, '-S', 'HTTP', 'localhost'], { env: { KRB5_CONFIG: aliased } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('HTTP/localhost@ad.ozs3.test');
  });
});
