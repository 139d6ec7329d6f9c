/**
 * `ozs3 doctor` end to end: the built CLI as a subprocess against a real MIT KDC, the Ozone-compatible
 * test gateway, a closed port and a self-signed https server. Each broken setup must be pinned to
 * the right check, with the right fix and exit status — and doctor must never change anything.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';

const execFileP = promisify(execFile);

const CHECK_NAMES = [
  'ticket',
  'client name',
  'krb5.conf',
  'service principal',
  'service ticket',
  'dns',
  'tcp',
  'tls',
  'clock',
  'gateway',
  'spnego',
  'admin rule',
  'aws files',
];
/** A SPNEGO token in clear (the redacted trace form is "Negotiate <redacted>"). */
const TOKEN_TEXT = /Negotiate\s+[A-Za-z0-9+/]{12,}/;

interface Check {
  status: string;
  detail: string;
  fix?: string;
}

let realm: Realm;
let gw: Gateway;
let gwDisabled: Gateway;
let tlsServer: HttpsServer;
let tlsPort: number;
let closedPort: number;
let aliceCc: string;
let shortCc: string;
let shortExpiresAt: number;
let svcKeytab: string;
let otherRealmConf: string;
let certFile: string;

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  await realm.addPrincipal('alice', { password: 'pw-alice' });
  // Started first, so that it has run out by the time its test runs.
  shortCc = await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-short', lifetime: '2s' });
  shortExpiresAt = Date.now() + 2_000;
  aliceCc = await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-alice' });
  await realm.addPrincipal('svc', { randkey: true });
  svcKeytab = await realm.writeKeytab(['svc'], 'svc.keytab');
  // One after the other: both add HTTP/localhost to the KDC when it is missing.
  gw = await startGateway(realm);
  gwDisabled = await startGateway(realm, { disabled: true });

  // The same krb5.conf, except that localhost now belongs to a realm nobody has a ticket for.
  otherRealmConf = join(realm.dir, 'krb5-other-realm.conf');
  const conf = readFileSync(realm.env.KRB5_CONFIG!, 'utf8');
  expect(conf).toMatch(/^\s*localhost = OZS3\.TEST$/m);
  writeFileSync(otherRealmConf, conf.replace(/^(\s*)localhost = OZS3\.TEST$/m, '$1localhost = OTHER.REALM'));

  // A self-signed certificate for localhost, made now; an https server that answers like Ozone.
  certFile = join(realm.dir, 'self-signed.pem');
  const keyFile = join(realm.dir, 'self-signed.key');
  await execFileP('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '30',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  tlsServer = createHttpsServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (_req, res) => {
    res.writeHead(401, { 'WWW-Authenticate': 'Negotiate' }).end();
  });
  tlsPort = await new Promise<number>((resolve) =>
    tlsServer.listen(0, '127.0.0.1', () => resolve((tlsServer.address() as { port: number }).port)),
  );

  // A port nothing listens on.
  const probe = createNetServer();
  closedPort = await new Promise<number>((resolve) =>
    probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
  );
  await new Promise((resolve) => probe.close(resolve));
});

afterAll(async () => {
  tlsServer?.closeAllConnections();
  await new Promise((resolve) => (tlsServer ? tlsServer.close(resolve) : resolve(undefined)));
  await Promise.all([gw?.close(), gwDisabled?.close()]);
  await realm?.stop();
});

function envFor(ccache: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(realm, ccache, extra);
}

function doctor(args: string[], env: Record<string, string> = envFor(aliceCc)): Promise<CliResult> {
  return runCli(['doctor', ...args], { env });
}

/** The plan block (`plan:` then `  name  value (from)`), then `ok   name: detail` lines, each optionally followed by `  fix: …`. */
function parseReport(stdout: string): Map<string, Check> {
  const checks = new Map<string, Check>();
  let last: Check | undefined;
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toBe('plan:');
  let i = 1;
  while (i < lines.length && /^ {2}\S.* \(.+\)$/.test(lines[i]!) && !/^ {2}fix: /.test(lines[i]!)) i++;
  for (const line of lines.slice(i)) {
    // The status padded to four characters, as docs/cli.md ("doctor") describes it.
    const check = /^(ok {2}|warn|fail|skip) ([^:]+): (.+)$/.exec(line);
    const fix = /^ {2}fix: (.+)$/.exec(line);
    if (check) checks.set(check[2]!, (last = { status: check[1]!.trim(), detail: check[3]! }));
    else if (fix && last) last.fix = fix[1]!;
    else throw new Error(`unexpected report line: ${JSON.stringify(line)}`);
  }
  return checks;
}

/** Asserts that `name` is the first failing check, with its exit status and fix. */
function expectFirstFailure(r: CliResult, name: string, code: number, detail: RegExp, fix: RegExp): Map<string, Check> {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(code);
  const checks = parseReport(r.stdout);
  expect([...checks.keys()]).toEqual(CHECK_NAMES.map((n) => (n === 'ticket' && checks.has('keytab') ? 'keytab' : n)));
  const firstFailure = [...checks.entries()].find(([, c]) => c.status === 'fail');
  expect(firstFailure?.[0], r.stdout).toBe(name);
  expect(firstFailure![1].detail).toMatch(detail);
  expect(firstFailure![1].fix).toMatch(fix);
  expect(r.stderr).toBe('');
  return checks;
}

describe('ozs3 doctor', () => {
  it('passes every check against a healthy setup, exits 0, and changes nothing on the gateway', async () => {
    await gw.reset();
    const r = await doctor(['--endpoint', gw.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const checks = parseReport(r.stdout);
    expect([...checks.keys()]).toEqual(CHECK_NAMES);
    // Every check ok; the admin rule is not checkable without creating a secret, and says so.
    for (const [name, check] of checks)
      expect(check.status, `${name}: ${check.detail}`).toBe(name === 'admin rule' ? 'skip' : 'ok');
    expect(checks.get('ticket')!.detail).toMatch(/alice@OZS3\.TEST.*expires/);
    expect(checks.get('service principal')!.detail).toMatch(
      /^HTTP\/localhost@OZS3\.TEST: the KDC issued a service ticket/,
    );
    expect(checks.get('krb5.conf')!.detail).toContain(realm.env.KRB5_CONFIG);
    expect(checks.get('spnego')!.detail).toMatch(
      /accepted your Kerberos token.*as alice@OZS3\.TEST.*mutual authentication verified/,
    );
    // Only GETs: one without a token, one with; no secret was created.
    const requests = await gw.requests();
    expect(requests.map((q) => [q.method, q.path, q.status])).toEqual([
      ['GET', '/secret', 401],
      ['GET', '/secret', 405],
    ]);
    expect(await gw.secrets()).toEqual({});
  });

  it('prints {"plan":[{name,value,from}],"checks":[{name,status,detail,fix}],"ok"} with --json', async () => {
    const good = await doctor(['--endpoint', gw.url, '--json']);
    expect(good.code).toBe(0);
    expect(good.stdout.trimEnd().split('\n')).toHaveLength(1);
    const report = JSON.parse(good.stdout) as {
      plan: { name: string; value: string; from: string }[];
      checks: Record<string, unknown>[];
      ok: boolean;
    };
    expect(Object.keys(report)).toEqual(['plan', 'checks', 'ok']);
    expect(report.plan.find((r) => r.name === 'endpoint')).toEqual({
      name: 'endpoint',
      value: `${gw.url}/secret`,
      from: '--endpoint',
    });
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(CHECK_NAMES);
    for (const c of report.checks) {
      expect(Object.keys(c)).toEqual(['name', 'status', 'detail', 'fix']);
      expect(c).toMatchObject({ status: c.name === 'admin rule' ? 'skip' : 'ok', fix: null });
    }

    const bad = await doctor(['--endpoint', `http://localhost:${closedPort}`, '--json']);
    expect(bad.code).toBe(7);
    const failed = JSON.parse(bad.stdout) as {
      checks: { name: string; status: string; fix: string | null }[];
      ok: boolean;
    };
    expect(failed.ok).toBe(false);
    expect(failed.checks.find((c) => c.name === 'tcp')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/running/),
    });
  });

  it('pinpoints a missing ticket: ticket fails, fix kinit, exit 3', async () => {
    const r = await doctor(['--endpoint', gw.url], envFor(`FILE:${join(realm.dir, 'no-such-ccache')}`));
    const checks = expectFirstFailure(r, 'ticket', 3, /no Kerberos ticket.*no-such-ccache/, /kinit.*--keytab/);
    expect(checks.get('service principal')!.status).toBe('skip');
  });

  it('pinpoints a service principal the KDC does not know, naming it', async () => {
    // Nobody has HTTP/127.0.0.1@OZS3.TEST: the gateway's principal is HTTP/localhost.
    const r = await doctor(['--endpoint', `http://127.0.0.1:${gw.port}`]);
    expectFirstFailure(
      r,
      'service principal',
      3,
      /does not know HTTP\/127\.0\.0\.1@OZS3\.TEST.*Server not found in Kerberos database/,
      /host name.*--endpoint.*--spn/,
    );
  });

  it('pinpoints a realm mapping that sends the host to a realm without a ticket or trust', async () => {
    const r = await doctor(['--endpoint', gw.url], envFor(aliceCc, { KRB5_CONFIG: otherRealmConf }));
    const checks = expectFirstFailure(
      r,
      'krb5.conf',
      3,
      /localhost → OTHER\.REALM.*ticket is for OZS3\.TEST/,
      /"localhost = OZS3\.TEST" under \[domain_realm\]/,
    );
    expect(checks.get('service principal')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/HTTP\/localhost@OTHER\.REALM.*krbtgt\/OTHER\.REALM@OZS3\.TEST/),
    });
  });

  it('takes the realm of --spn HTTP/host@REALM over that mapping, as getsecret does: all checks pass', async () => {
    const r = await doctor(
      ['--endpoint', gw.url, '--spn', `HTTP/localhost@${realm.name}`],
      envFor(aliceCc, { KRB5_CONFIG: otherRealmConf }),
    );
    const checks = parseReport(r.stdout);
    expect(r.code, r.stdout).toBe(0);
    expect(checks.get('krb5.conf')!.detail).toMatch(
      new RegExp(`localhost → ${realm.name.replace('.', '\\.')} \\(pinned by --spn`),
    );
    expect(checks.get('spnego')!.status).toBe('ok');
  });

  it('pinpoints a gateway whose keytab lacks the principal the KDC issued a ticket for: spnego fails', async () => {
    // The KDC knows HTTP/s3g.other.test, so the ticket is issued; the gateway holds only HTTP/localhost.
    if (!(await realm.hasPrincipal('HTTP/s3g.other.test')))
      await realm.addPrincipal('HTTP/s3g.other.test', { randkey: true });
    const r = await doctor(['--endpoint', gw.url, '--spn', 'HTTP/s3g.other.test@OZS3.TEST']);
    const checks = expectFirstFailure(
      r,
      'spnego',
      3,
      /could not verify the token for HTTP\/s3g\.other\.test@OZS3\.TEST: the gateway holds no key for .*GSSException/,
      /--spn/,
    );
    expect(checks.get('service principal')!.status).toBe('ok');
  });

  it('pinpoints an unreachable endpoint: tcp fails, exit 7', async () => {
    const r = await doctor(['--endpoint', `http://localhost:${closedPort}`]);
    const checks = expectFirstFailure(r, 'tcp', 7, /refused/, /S3 Gateway running.*19879/);
    expect(checks.get('dns')!.status).toBe('ok');
    expect(checks.get('gateway')!.status).toBe('skip');
  });

  it('pinpoints an untrusted certificate, and --cacert fixes that check', async () => {
    const url = `https://localhost:${tlsPort}`;
    const r = await doctor(['--endpoint', url]);
    const checks = expectFirstFailure(r, 'tls', 7, /self-signed.*subject CN=localhost/, /--cacert/);
    expect(checks.get('tcp')!.status).toBe('ok');

    const trusted = parseReport((await doctor(['--endpoint', url, '--cacert', certFile])).stdout);
    expect(trusted.get('tls')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^trusted: .*--cacert/) });
    expect(trusted.get('gateway')!.status).toBe('ok');
  });

  it('reads every setting from the plan: a --cluster preset’s spn and cacert show up in the checks', async () => {
    const xdg = join(realm.dir, 'xdg-doctor');
    mkdirSync(join(xdg, 'ozs3'), { recursive: true });
    writeFileSync(
      join(xdg, 'ozs3', 'config'),
      `[cluster tls]\nendpoint = https://localhost:${tlsPort}\nspn = HTTP/localhost@${realm.name}\ncacert = ${certFile}\n`,
    );
    const r = await doctor(['--cluster', 'tls'], envFor(aliceCc, { XDG_CONFIG_HOME: xdg }));
    const checks = parseReport(r.stdout);
    expect(checks.get('tls')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining(`${certFile} (cacert in [cluster tls]`),
    });
    expect(checks.get('krb5.conf')!.detail).toMatch(/localhost → OZS3\.TEST \(pinned by spn in \[cluster tls\]/);
    expect(r.stdout).toMatch(/^ {2}service principal +HTTP\/localhost@OZS3\.TEST \(spn in \[cluster tls\]/m);
    expect(r.stdout).toMatch(/^ {2}tls trust +system CAs \+ .* \(cacert in \[cluster tls\]/m);
  });

  it('names a --cacert file that holds no certificate as a local file problem (exit 9), as getsecret does', async () => {
    const notPem = join(realm.dir, 'not-a-cert.pem');
    writeFileSync(notPem, 'hello\n');
    const r = await doctor(['--endpoint', `https://localhost:${tlsPort}`, '--cacert', notPem]);
    expectFirstFailure(r, 'tls', 9, /holds no PEM certificate/, /openssl x509/);
  });

  it('pinpoints a disabled secret endpoint: gateway fails with the config key, exit 8', async () => {
    await gwDisabled.reset();
    const r = await doctor(['--endpoint', gwDisabled.url]);
    const checks = expectFirstFailure(r, 'gateway', 8, /disabled/, /ozone\.s3g\.secret\.http\.enabled=true/);
    expect(checks.get('spnego')!.status).toBe('skip');
    expect((await gwDisabled.requests()).map((q) => q.method)).toEqual(['GET']);
  });

  it('checks keytab login instead of the ticket cache with --keytab', async () => {
    const good = await doctor(
      ['--endpoint', gw.url, '--keytab', svcKeytab, '--principal', 'svc'],
      envFor(`FILE:${join(realm.dir, 'no-such-ccache')}`),
    );
    expect(good.code, good.stdout).toBe(0);
    const checks = parseReport(good.stdout);
    expect(checks.get('keytab')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/svc@OZS3\.TEST kvno 1.*kinit as svc@OZS3\.TEST works/),
    });
    expect(checks.get('spnego')!.detail).toMatch(/as svc@OZS3\.TEST/);

    const wrong = await doctor(['--endpoint', gw.url, '--keytab', svcKeytab, '--principal', 'bob']);
    expectFirstFailure(wrong, 'keytab', 3, /holds svc@OZS3\.TEST, not --principal bob/, /--principal svc@OZS3\.TEST/);
  });

  it('warns when klist is missing and falls back to what GSS tells', async () => {
    const noTools = { PATH: join(realm.dir, 'empty-path') };
    const good = await doctor(['--endpoint', gw.url], envFor(aliceCc, noTools));
    expect(good.code, good.stdout).toBe(0);
    expect(parseReport(good.stdout).get('ticket')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/klist is not on PATH; a service ticket was obtained/),
      fix: expect.stringMatching(/krb5-user/),
    });

    const none = await doctor(['--endpoint', gw.url], envFor(`FILE:${join(realm.dir, 'no-such-ccache')}`, noTools));
    expectFirstFailure(none, 'ticket', 3, /no Kerberos ticket.*klist is not on PATH/, /kinit/);
  });

  it('never prints a token, even with --verbose', async () => {
    const r = await doctor(['--endpoint', gw.url, '--verbose']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('authorization: Negotiate <redacted>');
    expect(`${r.stdout}${r.stderr}`).not.toMatch(TOKEN_TEXT);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/hadoop\.auth=[^<\s;]/);
  });

  it('says in its help that the report goes to stdout', async () => {
    const r = await runCli(['doctor', '--help'], { env: envFor(aliceCc) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/report is the command's output: it goes\s+to stdout/);
  });

  // Last, so that the 2-second ticket from beforeAll has run out by now, or nearly.
  it('pinpoints an expired ticket: ticket fails, fix kinit, exit 3', async () => {
    const wait = shortExpiresAt + 1_100 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const r = await doctor(['--endpoint', gw.url], envFor(shortCc));
    expectFirstFailure(r, 'ticket', 3, /alice@OZS3\.TEST.*has expired/, /kinit/);
  });
});
