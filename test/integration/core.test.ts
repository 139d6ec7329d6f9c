/**
 * getsecret / revokesecret end to end: the built CLI as a subprocess, a real MIT KDC, and the
 * Ozone-compatible test gateway verifying real SPNEGO tokens.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheEnv, withEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';

const execFileP = promisify(execFile);

let realm: Realm;
let gw: Gateway;
const ccache: Record<string, string> = {};
let svcKeytab: string;

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  for (const user of ['alice', 'admin', 'carol']) {
    await realm.addPrincipal(user, { password: `pw-${user}` });
    ccache[user] = await realm.kinit(user, { password: `pw-${user}`, ccache: `cc-${user}` });
  }
  await realm.addPrincipal('svc', { randkey: true });
  svcKeytab = await realm.writeKeytab(['svc'], 'svc.keytab');
  gw = await startGateway(realm, { admins: ['admin'] });
});

afterAll(async () => {
  await gw?.close();
  await realm?.stop();
});

beforeEach(async () => {
  await gw.reset();
  await gw.setOptions({ disabled: false, adminOnly: false, userForm405: false, mutual: true, setCookie: true });
});

function envFor(user: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(realm, ccache[user] ?? 'FILE:/nonexistent/cc', extra);
}

function ozs3(
  user: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; endpoint?: string } = {},
): Promise<CliResult> {
  return runCli([...args, '--endpoint', opts.endpoint ?? gw.url], { env: opts.env ?? envFor(user), input: opts.input });
}

function expectCleanFailure(r: CliResult, code: number, message: RegExp, hint?: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^ozs3: /);
  expect(lines[0]).toMatch(message);
  if (hint) expect(lines[1]).toMatch(hint);
  expect(lines.length).toBeLessThanOrEqual(2);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('getsecret', () => {
  it('prints exactly the two lines of `ozone s3 getsecret` for your own secret', async () => {
    const r = await ozs3('alice', ['getsecret']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const secrets = await gw.secrets();
    expect(r.stdout).toBe(`awsAccessKey=alice@${realm.name}\nawsSecret=${secrets[`alice@${realm.name}`]}\n`);
    const [req] = await gw.requests();
    expect(req).toMatchObject({
      method: 'PUT',
      path: '/secret',
      query: null,
      principal: `alice@${realm.name}`,
      authVia: 'negotiate',
      status: 200,
    });
  });

  it('exits 6 with a revoke hint when the secret already exists', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);
    const r = await ozs3('alice', ['getsecret']);
    expectCleanFailure(r, 6, /S3_SECRET_ALREADY_EXISTS/, /^hint: .*revokesecret.*--if-exists rotate/);
  });

  it('has the alias get-secret', async () => {
    expect((await ozs3('alice', ['get-secret'])).code).toBe(0);
  });

  it('prints {"awsAccessKey","awsSecret"} with --json', async () => {
    const r = await ozs3('alice', ['getsecret', '--json']);
    expect(r.code).toBe(0);
    const secrets = await gw.secrets();
    expect(JSON.parse(r.stdout)).toEqual({
      awsAccessKey: `alice@${realm.name}`,
      awsSecret: secrets[`alice@${realm.name}`],
    });
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
  });

  it('prints export lines that eval to exactly the server strings, whatever characters they hold', async () => {
    const nasty = `a'b"c$(touch PWNED)\`touch PWNED\`\\;&|<>* $HOME %s`;
    await gw.setOptions({ presetSecrets: { "we'ird$x": nasty } });
    const r = await ozs3('admin', ['getsecret', '-e', '-u', "we'ird$x"], { env: envFor('admin') });
    expect(r.code, r.stderr).toBe(0);
    const shell = await execFileP(
      'bash',
      ['-c', `eval "$1"; printf '%s\\n%s' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"`, 'bash', r.stdout],
      { cwd: realm.dir },
    );
    expect(shell.stdout).toBe(`we'ird$x\n${nasty}`);
    expect(existsSync(join(realm.dir, 'PWNED'))).toBe(false);
  });

  it('lets an S3 admin get another user’s secret, with the user in the path', async () => {
    const r = await ozs3('admin', ['getsecret', '-u', 'bob']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^awsAccessKey=bob\nawsSecret=[0-9a-f]{64}\n$/);
    const [req] = await gw.requests();
    expect(req).toMatchObject({ method: 'PUT', path: '/secret/bob', query: null });
  });

  it('percent-encodes a principal as one path segment', async () => {
    const r = await ozs3('admin', ['getsecret', '--user', `svc/host@${realm.name}`]);
    expect(r.code, r.stderr).toBe(0);
    const [req] = await gw.requests();
    expect(req!.path).toBe(`/secret/svc%2Fhost%40${realm.name}`);
    expect(r.stdout).toContain(`awsAccessKey=svc/host@${realm.name}\n`);
  });

  it('exits 4 with an admin hint when a non-admin names another user, and changes nothing', async () => {
    const r = await ozs3('alice', ['getsecret', '-u', 'bob']);
    expectCleanFailure(r, 4, /not an S3 administrator/, /ozone\.s3\.administrators/);
    expect(await gw.secrets()).toEqual({});
  });

  it('exits 4 naming the Ozone 2.x admin-only endpoint when even one’s own secret is forbidden', async () => {
    await gw.setOptions({ adminOnly: true });
    const r = await ozs3('alice', ['getsecret']);
    expectCleanFailure(r, 4, /forbidden/, /S3 admins only.*--om <om-host>/);
  });

  it('exits 8 with the config key when the endpoint is disabled', async () => {
    await gw.setOptions({ disabled: true });
    const r = await ozs3('alice', ['getsecret']);
    expectCleanFailure(r, 8, /disabled/, /ozone\.s3g\.secret\.http\.enabled/);
  });

  it('exits 8 when the gateway refuses the /{username} form with 405', async () => {
    await gw.setOptions({ userForm405: true });
    const r = await ozs3('admin', ['getsecret', '-u', 'bob']);
    expectCleanFailure(r, 8, /405/);
  });

  it('refuses a 200 without a mutual authentication token (exit 3), and takes it with --no-mutual-auth', async () => {
    await gw.setOptions({ mutual: false });
    const refused = await ozs3('alice', ['getsecret']);
    expectCleanFailure(refused, 3, /without a mutual-authentication token/, /--no-mutual-auth/);
    await gw.reset();
    await gw.setOptions({ mutual: false });
    const accepted = await ozs3('alice', ['getsecret', '--no-mutual-auth']);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stdout).toMatch(/^awsAccessKey=alice@/);
    expect(accepted.stderr).toMatch(/^ozs3: warning: --no-mutual-auth/);
  });

  it('--if-exists skip exits 0 without a secret; rotate revokes and returns a new one', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);
    const before = (await gw.secrets())[`alice@${realm.name}`];
    const skip = await ozs3('alice', ['getsecret', '--if-exists', 'skip']);
    expect(skip.code).toBe(0);
    expect(skip.stdout).toBe('');
    expect(skip.stderr).toMatch(/skipped/);
    const rotate = await ozs3('alice', ['getsecret', '--if-exists', 'rotate']);
    expect(rotate.code, rotate.stderr).toBe(0);
    const after = (await gw.secrets())[`alice@${realm.name}`];
    expect(after).not.toBe(before);
    expect(rotate.stdout).toBe(`awsAccessKey=alice@${realm.name}\nawsSecret=${after}\n`);
  });
});

describe('revokesecret', () => {
  it('refuses without a terminal and without --yes (exit 2), sending nothing', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);
    await gw.reset();
    const r = await ozs3('alice', ['revokesecret']);
    expectCleanFailure(r, 2, /confirmation/, /--yes/);
    expect(await gw.requests()).toEqual([]);
  });

  it('revokes with --yes (exit 0), then reports S3_SECRET_NOT_FOUND (exit 5)', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);
    const r = await ozs3('alice', ['revokesecret', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(await gw.secrets()).toEqual({});
    const again = await ozs3('alice', ['revoke-secret', '-y']);
    expectCleanFailure(again, 5, /S3_SECRET_NOT_FOUND/);
  });

  it('never revokes a non-admin’s own secret when they name another user', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);
    expect((await ozs3('admin', ['getsecret', '-u', 'bob'])).code).toBe(0);
    const r = await ozs3('alice', ['revokesecret', '-u', 'bob', '--yes']);
    expectCleanFailure(r, 4, /not an S3 administrator/);
    expect(Object.keys(await gw.secrets()).sort()).toEqual([`alice@${realm.name}`, 'bob']);
    for (const req of await gw.requests()) expect(req.query).toBeNull();
  });

  it('lets an admin revoke another user’s secret by path', async () => {
    expect((await ozs3('admin', ['getsecret', '-u', 'bob'])).code).toBe(0);
    const r = await ozs3('admin', ['revokesecret', '-u', 'bob', '-y']);
    expect(r.code, r.stderr).toBe(0);
    const reqs = await gw.requests();
    expect(reqs.at(-1)).toMatchObject({ method: 'DELETE', path: '/secret/bob', query: null, status: 200 });
  });
});

describe('Kerberos', () => {
  it('exits 3 with a kinit hint when there is no ticket', async () => {
    const r = await ozs3('nobody', ['getsecret']);
    expectCleanFailure(r, 3, /no Kerberos ticket/, /kinit/);
    expect(await gw.requests()).toEqual([]);
  });

  it('exits 3 with an --spn hint when the KDC does not know the service principal', async () => {
    const r = await ozs3('alice', ['getsecret'], { endpoint: `http://127.0.0.1:${gw.port}` });
    expectCleanFailure(r, 3, /HTTP\/127\.0\.0\.1/, /--spn/);
  });

  it('uses --spn when the endpoint host differs from the principal’s host', async () => {
    const r = await ozs3('alice', ['getsecret', '--spn', `HTTP/localhost@${realm.name}`], {
      endpoint: `http://127.0.0.1:${gw.port}`,
    });
    expect(r.code, r.stderr).toBe(0);
  });

  it('takes the realm from --spn HTTP/host@REALM over a krb5.conf that maps the host elsewhere', async () => {
    await using other = await startRealm({ domainRealm: { localhost: 'ELSEWHERE.TEST' } });
    await other.addPrincipal('alice', { password: 'pw' });
    const otherCc = await other.kinit('alice', { password: 'pw' });
    await using otherGw = await startGateway(other);
    const privateTmp = mkdtempSync(join(tmpdir(), 'ozs3-tmp-'));
    const env = cacheEnv(other, otherCc, { TMPDIR: privateTmp });
    const mapped = await runCli(['getsecret', '--endpoint', otherGw.url, '--retries', '0'], { env });
    expectCleanFailure(mapped, 3, /ELSEWHERE\.TEST/);
    const pinned = await runCli(['getsecret', '--endpoint', otherGw.url, '--spn', `HTTP/localhost@${other.name}`], {
      env,
    });
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(pinned.stdout).toContain(`awsAccessKey=alice@${other.name}`);
    // The one-line krb5.conf that pinned the realm is gone with the process.
    expect(readdirSync(privateTmp).filter((f) => f.startsWith('ozs3-'))).toEqual([]);
  });

  it('exits 3 when the gateway cannot verify the token (its keytab lacks the principal)', async () => {
    await realm.addPrincipal('HTTP/127.0.0.1', { randkey: true });
    const r = await ozs3('alice', ['getsecret'], { endpoint: `http://127.0.0.1:${gw.port}` });
    expectCleanFailure(r, 3, /the gateway holds no key for HTTP\/127\.0\.0\.1 .*not found in keytab/, /--spn/);
  });

  it('logs in from a keytab without kinit and without creating a ticket cache', async () => {
    const cacheFile = join(realm.dir, 'must-not-exist');
    const before = readdirSync(realm.dir).sort();
    const r = await ozs3('svc', ['getsecret', '--keytab', svcKeytab, '--principal', `svc@${realm.name}`, '--json'], {
      env: cacheEnv(realm, `FILE:${cacheFile}`),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).awsAccessKey).toBe(`svc@${realm.name}`);
    expect(existsSync(cacheFile)).toBe(false);
    expect(readdirSync(realm.dir).sort()).toEqual(before);
  });

  it('takes the keytab from KRB5_CLIENT_KTNAME too', async () => {
    const r = await ozs3('svc', ['getsecret'], {
      env: withEnv(realm, { KRB5CCNAME: 'FILE:/nonexistent/cc', KRB5_CLIENT_KTNAME: svcKeytab }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`awsAccessKey=svc@${realm.name}`);
  });

  it('exits 3 naming the keytab when it cannot log in from it', async () => {
    const r = await ozs3('svc', ['getsecret', '--keytab', svcKeytab, '--principal', `ghost@${realm.name}`], {
      env: cacheEnv(realm, 'FILE:/nonexistent/cc'),
    });
    expectCleanFailure(r, 3, /keytab/, /klist -kt/);
  });

  it('sends a fresh token per request and never leaks tokens, cookies or secrets, even with --verbose', async () => {
    const r = await ozs3('admin', ['getsecret', '-v', '-u', 'x1', '-u', 'x2', '--json', '--concurrency', '1']);
    expect(r.code, r.stderr).toBe(0);
    for (const line of r.stdout.trim().split('\n')) expect(r.stderr).not.toContain(JSON.parse(line).awsSecret);
    expect(r.stderr).not.toMatch(/Negotiate [A-Za-z0-9+/=]{8,}/);
    expect(r.stderr).not.toMatch(/hadoop\.auth="?u=/);
    expect(r.stderr).toMatch(/mutual authentication verified/);
  });
});

describe('network', () => {
  it('exits 7 when the endpoint refuses connections', async () => {
    const r = await ozs3('alice', ['getsecret', '--retries', '0'], { endpoint: 'http://localhost:1' });
    expectCleanFailure(r, 7, /refused/);
    expect(r.ms).toBeLessThan(10_000);
  });
});

describe('usage', () => {
  it.each([
    [['getsecret', '--bogus'], /unknown option '--bogus'/],
    [['getsecret', '-e', '--json'], /cannot be used together/],
    [['getsecret', '--if-exists', 'maybe'], /--if-exists/],
    [['getsecret', '--profile', 'x'], /only goes with --write-aws/],
    [['getsecret', '--timeout', '0'], /--timeout/],
  ])('exits 2 for %j with one line and a hint', async (args, message) => {
    const r = await ozs3('alice', args);
    expectCleanFailure(r, 2, message, /^hint: /);
  });

  it('exits 2 when no endpoint is given', async () => {
    const r = await runCli(['getsecret'], { env: envFor('alice') });
    expectCleanFailure(r, 2, /no endpoint/, /--endpoint/);
  });
});

describe('curl --negotiate agrees with ozs3 on the same endpoint', () => {
  async function curl(user: string, method: string, path: string) {
    const { stdout } = await execFileP(
      'curl',
      ['-s', '-i', '--negotiate', '-u', ':', '-X', method, `${gw.url}${path}`],
      { env: envFor(user) },
    );
    const status = /^HTTP\/1\.1 (\d{3}) ?(.*?)\r?$/m.exec(stdout);
    return {
      status: Number(status?.[1]),
      reason: status?.[2] ?? '',
      body: stdout
        .split(/\r?\n\r?\n/)
        .slice(1)
        .join('\n\n'),
    };
  }

  it('sees the secret ozs3 created, in the same XML ozs3 parsed, and the same error codes', async () => {
    const created = await ozs3('alice', ['getsecret', '--json']);
    const { awsSecret } = JSON.parse(created.stdout);
    const again = await curl('alice', 'PUT', '/secret');
    expect(again).toMatchObject({ status: 400, reason: 'S3_SECRET_ALREADY_EXISTS' });
    expect((await curl('alice', 'DELETE', '/secret')).status).toBe(200);
    const fresh = await curl('alice', 'PUT', '/secret');
    expect(fresh.status).toBe(200);
    expect(fresh.body).toContain(`<awsAccessKey>alice@${realm.name}</awsAccessKey>`);
    expect(fresh.body).not.toContain(awsSecret);
    const ozs3Again = await ozs3('alice', ['getsecret']);
    expect(ozs3Again.code).toBe(6);
    expect((await curl('alice', 'DELETE', '/secret')).status).toBe(200);
    const missing = await curl('alice', 'DELETE', '/secret');
    expect(missing).toMatchObject({ status: 404, reason: 'S3_SECRET_NOT_FOUND' });
    expect((await ozs3('alice', ['revokesecret', '-y'])).code).toBe(5);
  });
});
