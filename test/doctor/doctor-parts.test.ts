/**
 * The pure parts of `ozs3 doctor`, as case tables: krb5.conf parsing and the [domain_realm] walk,
 * klist parsing, what an unauthenticated answer means, clock skew, and the report's shape.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostRealm, loadKrb5Config, parseProfile } from '../../src/doctor/krb5-conf.js';
import { findTgt, keytabPrincipals, parseKeytabListing, parseKlist, parseKlistTime } from '../../src/auth/klist.js';
import { checkClock, classifyAnonymous, type Probe } from '../../src/doctor/gateway.js';
import { renderReport } from '../../src/commands/doctor.js';
import { checkAwsFiles } from '../../src/doctor/aws-files.js';

const dir = mkdtempSync(join(tmpdir(), 'ozs3-doctor-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KRB5_CONF = `
# comment
[libdefaults]
  default_realm = EXAMPLE.COM
  default_realm = IGNORED.COM
  dns_lookup_realm = false

[realms]
  EXAMPLE.COM = {
    kdc = kdc1.example.com
    default_domain = example.com
  }
  LAB.EXAMPLE.COM = {
    kdc = kdc.lab.example.com
  }

[domain_realm]
  .example.com = EXAMPLE.COM
  example.com = EXAMPLE.COM
  .lab.example.com = LAB.EXAMPLE.COM
  s3g.lab.example.com = EXAMPLE.COM
  10.0.0.5 = LAB.EXAMPLE.COM
`;

describe('krb5.conf', () => {
  const data = parseProfile(KRB5_CONF);
  const config = { get: (section: string, name: string) => data.relations.get(section)?.get(name) };

  it('keeps the first value of a relation and skips subsections', () => {
    expect(config.get('libdefaults', 'default_realm')).toBe('EXAMPLE.COM');
    expect(config.get('realms', 'kdc')).toBeUndefined();
    expect([...data.realms]).toEqual(['EXAMPLE.COM', 'LAB.EXAMPLE.COM']);
  });

  it.each([
    ['s3g.lab.example.com', 'EXAMPLE.COM', 's3g.lab.example.com'],
    ['S3G.LAB.EXAMPLE.COM.', 'EXAMPLE.COM', 's3g.lab.example.com'],
    ['other.lab.example.com', 'LAB.EXAMPLE.COM', '.lab.example.com'],
    ['a.b.example.com', 'EXAMPLE.COM', '.example.com'],
    ['example.com', 'EXAMPLE.COM', 'example.com'],
    ['10.0.0.5', 'LAB.EXAMPLE.COM', '10.0.0.5'],
  ])('maps %s to %s (entry %s), as krb5_get_host_realm walks [domain_realm]', (host, realm, entry) => {
    expect(hostRealm(config, host)).toEqual({ realm, entry });
  });

  it.each(['example.org', 'localhost', '10.0.0.6'])('maps %s to nothing', (host) => {
    expect(hostRealm(config, host)).toBeUndefined();
  });

  it('reads KRB5_CONFIG as a list, follows include and includedir, and reports unreadable files', async () => {
    const included = join(dir, 'included.conf');
    const incdir = join(dir, 'krb5.conf.d');
    const main = join(dir, 'krb5.conf');
    writeFileSync(included, '[domain_realm]\n  s3g.corp = CORP.REALM\n');
    rmSync(incdir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(incdir));
    writeFileSync(join(incdir, 'extra'), '[libdefaults]\n  default_realm = FROM.INCLUDEDIR\n');
    writeFileSync(join(incdir, 'skipped~'), '[libdefaults]\n  default_realm = NOT.READ\n');
    writeFileSync(
      main,
      `[libdefaults]\n  dns_lookup_kdc = false\ninclude ${included}\nincludedir ${incdir}\n  default_realm = FROM.MAIN\n  rdns = false\n`,
    );
    const config = await loadKrb5Config({ KRB5_CONFIG: `${join(dir, 'missing.conf')}:${main}` });
    expect(config.source).toBe('KRB5_CONFIG');
    expect(config.unreadable).toEqual([{ file: join(dir, 'missing.conf'), code: 'ENOENT' }]);
    expect(config.read).toEqual([main, included, join(incdir, 'extra')]);
    // An included file counts as if it appeared at its directive; then the parent's section resumes.
    expect(config.get('libdefaults', 'default_realm')).toBe('FROM.INCLUDEDIR');
    expect(config.get('libdefaults', 'rdns')).toBe('false');
    expect(config.get('libdefaults', 'dns_lookup_kdc')).toBe('false');
    expect(hostRealm(config, 's3g.corp')?.realm).toBe('CORP.REALM');
  });
});

const KLIST = `Ticket cache: FILE:/tmp/krb5cc_1000
Default principal: alice@EXAMPLE.COM

Valid starting     Expires            Service principal
11/22/26 22:27:41  11/23/26 08:27:41  krbtgt/EXAMPLE.COM@EXAMPLE.COM
	renew until 11/29/26 22:27:41
11/22/26 22:30:00  11/23/26 08:27:41  HTTP/s3g.example.com@EXAMPLE.COM
`;

describe('klist', () => {
  it('reads the cache, the principal, and the TGT with its expiry (C-locale dates are local time)', () => {
    const listing = parseKlist(KLIST);
    expect(listing.cache).toBe('FILE:/tmp/krb5cc_1000');
    expect(listing.principal).toBe('alice@EXAMPLE.COM');
    expect(listing.tickets).toHaveLength(2);
    const tgt = findTgt(listing)!;
    expect(tgt.server).toBe('krbtgt/EXAMPLE.COM@EXAMPLE.COM');
    expect(tgt.expires).toEqual(new Date(2026, 10, 23, 8, 27, 41));
    expect(tgt.renewUntil).toEqual(new Date(2026, 10, 29, 22, 27, 41));
  });

  it.each([
    ['11/23/26 08:27:41', new Date(2026, 10, 23, 8, 27, 41)],
    ['11/23/2026 08:27:41', new Date(2026, 10, 23, 8, 27, 41)],
    ['nonsense', undefined],
  ])('parses the time %s', (text, date) => {
    expect(parseKlistTime(text)).toEqual(date);
  });

  it('lists keytab principals once each, with their newest kvno', () => {
    const text = `Keytab name: FILE:/etc/svc.keytab
KVNO Timestamp         Principal
---- ----------------- --------------------------------------------------------
   2 11/22/26 22:27:44 svc@EXAMPLE.COM (aes256-cts-hmac-sha1-96)
   3 11/22/26 22:27:44 svc@EXAMPLE.COM (aes256-cts-hmac-sha1-96)
   1 11/22/26 22:27:44 HTTP/s3g.example.com@EXAMPLE.COM
`;
    expect(keytabPrincipals(parseKeytabListing(text))).toEqual([
      { kvno: 3, principal: 'svc@EXAMPLE.COM' },
      { kvno: 1, principal: 'HTTP/s3g.example.com@EXAMPLE.COM' },
    ]);
  });
});

function probe(status: number, headers: Record<string, string> = {}, body = '', reason = ''): Probe {
  return { status, reason, headers, body, sentAt: 1_000_000, receivedAt: 1_000_010 };
}

describe('what GET /secret without a token means', () => {
  const endpoint = new URL('https://s3g.example.com:9879/secret');
  it.each([
    [
      '401 Negotiate',
      probe(401, { 'www-authenticate': 'Negotiate' }),
      'ok',
      undefined,
      /Kerberos \(SPNEGO\) protected/,
    ],
    [
      '401 Basic',
      probe(401, { 'www-authenticate': 'Basic realm="x"' }),
      'fail',
      8,
      /Basic authentication, not Negotiate/,
    ],
    ['400 disabled', probe(400, {}, 'S3 Secret endpoint is disabled.'), 'fail', 8, /disabled/],
    [
      '405 from Jersey (no auth filter: disabled)',
      probe(405, { allow: 'DELETE,OPTIONS,PUT' }),
      'fail',
      8,
      /disabled.*ozone\.s3g\.secret\.http\.enabled/,
    ],
    ['404', probe(404, { 'content-type': 'text/html' }, '<html>'), 'fail', 8, /nothing at .* \(404\)/],
    ['403', probe(403), 'warn', undefined, /403/],
    ['302', probe(302, { location: 'https://sso.example.com/login' }), 'fail', 8, /redirects.*sso\.example\.com/],
    ['503', probe(503), 'fail', 8, /failed: 503/],
    ['200 HTML', probe(200, { 'content-type': 'text/html' }, '<!DOCTYPE html><html>'), 'fail', 8, /HTML page/],
    ['204', probe(204), 'warn', undefined, /unexpected 204/],
  ])('%s → %s', (_label, answer, status, exitCode, detail) => {
    const result = classifyAnonymous(answer, endpoint);
    expect(result).toMatchObject({ name: 'gateway', status });
    expect(result.exitCode).toBe(exitCode);
    expect(result.detail).toMatch(detail);
  });

  it('suggests the other port generation on a 404', () => {
    expect(classifyAnonymous(probe(404), endpoint).fix).toMatch(/try port 19879/);
    expect(classifyAnonymous(probe(404), new URL('https://s3g.example.com:19879/secret')).fix).toMatch(/try port 9879/);
  });

  it('names the config key when the endpoint is disabled', () => {
    expect(classifyAnonymous(probe(405, { allow: 'DELETE,OPTIONS,PUT' }), endpoint).fix).toMatch(
      /ozone\.s3g\.secret\.http\.enabled=true/,
    );
  });
});

describe('clock skew against the Date header', () => {
  const at = (skewSeconds: number) => {
    const local = Date.UTC(2026, 0, 1, 12, 0, 0);
    return {
      ...probe(401, { date: new Date(local + skewSeconds * 1000).toUTCString() }),
      sentAt: local,
      receivedAt: local,
    };
  };
  it.each([
    [0, 'ok'],
    [-1, 'ok'],
    [59, 'ok'],
    [61, 'warn'],
    [-299, 'warn'],
    [301, 'fail'],
    [-3600, 'fail'],
  ])('%i s → %s', (skew, status) => {
    const result = checkClock(at(skew));
    expect(result.status).toBe(status);
    if (status === 'fail') expect(result.exitCode).toBe(3);
  });

  it('without a Date header: skip, not a warning (nothing to fix; spnego would name a skew)', () => {
    expect(checkClock(probe(401))).toMatchObject({ status: 'skip', detail: expect.stringMatching(/no Date header/) });
  });
});

describe('the report', () => {
  it('prints one line per check, a fix line under warn and fail only, and strips control characters', async () => {
    const text = await renderReport(
      {
        plan: [],
        checks: [
          { name: 'dns', status: 'ok', detail: 'localhost → 127.0.0.1' },
          { name: 'tls', status: 'fail', detail: 'bad\u001b[31m cert', fix: 'use --cacert', exitCode: 7 },
          { name: 'clock', status: 'warn', detail: '90 s', fix: 'NTP' },
          { name: 'spnego', status: 'skip', detail: 'not reached', fix: 'never shown' },
        ],
      },
      false,
    );
    expect(text).toBe(
      'ok   dns: localhost → 127.0.0.1\nfail tls: bad cert\n  fix: use --cacert\nwarn clock: 90 s\n  fix: NTP\nskip spnego: not reached\n',
    );
  });

  it('colours only when asked', async () => {
    const checks = [{ name: 'dns', status: 'fail' as const, detail: 'x', fix: 'y' }];
    expect(await renderReport({ plan: [], checks }, false)).not.toContain('\u001b[');
    expect(await renderReport({ plan: [], checks }, true)).toContain('\u001b[');
  });

  it('shows the plan first: each value and where it came from', async () => {
    const plan = [{ name: 'endpoint', value: 'https://g:19879/secret', from: 'endpoint in [cluster prod] of /c' }];
    expect(await renderReport({ plan, checks: [] }, false)).toBe(
      'plan:\n  endpoint  https://g:19879/secret (endpoint in [cluster prod] of /c)\n',
    );
  });
});

describe('the AWS files check', () => {
  it('is fine with files that do not exist yet (--write-aws creates them)', async () => {
    const home = join(dir, 'home-absent');
    mkdirSync(home);
    expect(await checkAwsFiles({}, home)).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/~\/\.aws\/config \(absent/),
    });
  });

  it('warns when the credentials file is readable by others, with the chmod to run', async () => {
    const home = join(dir, 'home-loose');
    mkdirSync(join(home, '.aws'), { recursive: true });
    writeFileSync(join(home, '.aws', 'credentials'), '[default]\n');
    chmodSync(join(home, '.aws', 'credentials'), 0o644);
    const result = await checkAwsFiles({}, home);
    expect(result).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/readable by group or others \(0644\)/),
    });
    expect(result.fix).toBe(`chmod 600 ${join(home, '.aws', 'credentials')}`);
  });

  it('fails with exit 9 when a file is not a regular file; honours AWS_SHARED_CREDENTIALS_FILE', async () => {
    const home = join(dir, 'home-dir');
    const credentials = join(dir, 'credentials-is-a-dir');
    mkdirSync(home);
    mkdirSync(credentials);
    const result = await checkAwsFiles({ AWS_SHARED_CREDENTIALS_FILE: credentials }, home);
    expect(result).toMatchObject({
      name: 'aws files',
      status: 'fail',
      exitCode: 9,
      detail: `${credentials} is not a regular file`,
    });
  });
});
