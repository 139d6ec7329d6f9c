/**
 * Scripted provisioning: many users in one run, NDJSON, --if-exists, batch revoke, keytab login in CI.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheEnv, withEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';

let realm: Realm;
let gw: Gateway;
let adminCc: string;
let adminKeytab: string;
let work: string;

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  await realm.addPrincipal('admin', { password: 'pw-admin' });
  await realm.addPrincipal('alice', { password: 'pw-alice' });
  adminCc = await realm.kinit('admin', { password: 'pw-admin', ccache: 'cc-admin' });
  await realm.addPrincipal('provisioner', { randkey: true });
  adminKeytab = await realm.writeKeytab(['provisioner'], 'provisioner.keytab');
  gw = await startGateway(realm, { admins: ['admin', 'provisioner'] });
  work = mkdtempSync(join(tmpdir(), 'ozs3-batch-'));
});

afterAll(async () => {
  await gw?.close();
  await realm?.stop();
});

beforeEach(async () => {
  await gw.reset();
});

const users = (n: number, prefix = 'svc') =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);

function admin(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runCli([...args, '--endpoint', gw.url], {
    env: opts.env ?? cacheEnv(realm, adminCc),
    input: opts.input,
  });
}

function ndjson(stdout: string): Record<string, unknown>[] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('several users in one run', () => {
  it('provisions 40 users from a users file into NDJSON that matches the server’s store, in input order', async () => {
    const names = users(40);
    const file = join(work, 'users.txt');
    writeFileSync(file, `# service accounts\n\n${names.join('\n')}\n`);
    const r = await admin(['getsecret', '--users-file', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    // A batch ends with one summary line on stderr.
    expect(r.stderr).toBe('ozs3: 40 users: 40 done\n');
    const lines = ndjson(r.stdout);
    const store = await gw.secrets();
    expect(lines.map((l) => l.user)).toEqual(names);
    for (const line of lines)
      expect(line).toEqual({ user: line.user, awsAccessKey: line.user, awsSecret: store[line.user as string] });
    // Connections and the hadoop.auth cookie are reused: most requests need no new handshake.
    const requests = await gw.requests();
    expect(requests).toHaveLength(40);
    expect(requests.filter((q) => q.authVia === 'negotiate').length).toBeLessThanOrEqual(4);
  });

  it('reads users from stdin with --users-file - and --user together', async () => {
    const r = await admin(['getsecret', '-u', 'first', '--users-file', '-', '--json'], {
      input: 'second\n# skip me\nthird\n',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(ndjson(r.stdout).map((l) => l.user)).toEqual(['first', 'second', 'third']);
  });

  it('labels each user in the default and export formats', async () => {
    const r = await admin(['getsecret', '-u', 'a1', '-u', 'a2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^# user: a1\nawsAccessKey=a1\nawsSecret=[0-9a-f]{64}\n# user: a2\nawsAccessKey=a2\nawsSecret=[0-9a-f]{64}\n$/,
    );
    await gw.reset();
    const e = await admin(['getsecret', '-e', '-u', 'a1', '-u', 'a2']);
    expect(e.stdout).toMatch(
      /^# user: a1\nexport AWS_ACCESS_KEY_ID='a1'\nexport AWS_SECRET_ACCESS_KEY='[0-9a-f]{64}'\n# user: a2\n/,
    );
  });

  it('reports a partial failure per user and exits with the first failure’s code', async () => {
    await gw.setOptions({ existingSecrets: { 'u-2': 'old2', 'u-4': 'old4' } });
    await gw.reset();
    const r = await admin(['getsecret', '-u', 'u-1', '-u', 'u-2', '-u', 'u-3', '-u', 'u-4', '--json']);
    expect(r.code).toBe(6);
    const lines = ndjson(r.stdout);
    expect(lines.map((l) => l.user)).toEqual(['u-1', 'u-2', 'u-3', 'u-4']);
    expect(lines[0]).toHaveProperty('awsSecret');
    expect(lines[1]).toMatchObject({ user: 'u-2', error: { code: 'S3_SECRET_ALREADY_EXISTS' } });
    expect(lines[2]).toHaveProperty('awsSecret');
    expect(lines[3]).toMatchObject({ error: { code: 'S3_SECRET_ALREADY_EXISTS' } });
    expect(r.stderr).toMatch(/^ozs3: u-2: S3_SECRET_ALREADY_EXISTS/m);
    await gw.setOptions({ existingSecrets: {} });
  });

  it('exits with the first failure in input order, not in completion order', async () => {
    // alice is not an admin: every user fails with 403, except that none may be revoked or created.
    await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-alice' });
    const r = await admin(['getsecret', '-u', 'x', '-u', 'y', '--json'], {
      env: cacheEnv(realm, `FILE:${join(realm.dir, 'cc-alice')}`),
    });
    expect(r.code).toBe(4);
    expect(ndjson(r.stdout).map((l) => (l.error as { code: string }).code)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
    expect(await gw.secrets()).toEqual({});
  });

  it('--if-exists skip leaves existing secrets alone; rotate replaces them; a missing one is created', async () => {
    await gw.setOptions({ existingSecrets: { 'k-1': 'old1' } });
    await gw.reset();
    const skip = await admin(['getsecret', '-u', 'k-1', '-u', 'k-2', '--if-exists', 'skip', '--json']);
    expect(skip.code, skip.stderr).toBe(0);
    expect(ndjson(skip.stdout)).toEqual([
      { user: 'k-1', skipped: true },
      expect.objectContaining({ user: 'k-2', awsAccessKey: 'k-2' }),
    ]);
    expect((await gw.secrets())['k-1']).toBe('old1');
    const rotate = await admin(['getsecret', '-u', 'k-1', '-u', 'k-3', '--if-exists', 'rotate', '--json']);
    expect(rotate.code, rotate.stderr).toBe(0);
    const store = await gw.secrets();
    expect(store['k-1']).not.toBe('old1');
    expect(ndjson(rotate.stdout)).toEqual([
      { user: 'k-1', awsAccessKey: 'k-1', awsSecret: store['k-1'] },
      { user: 'k-3', awsAccessKey: 'k-3', awsSecret: store['k-3'] },
    ]);
    await gw.setOptions({ existingSecrets: {} });
  });

  it('masks every secret for GitHub Actions on stderr, before stdout carries it', async () => {
    const r = await admin(['getsecret', '-u', 'g1', '-u', 'g2', '--json'], {
      env: cacheEnv(realm, adminCc, { GITHUB_ACTIONS: 'true' }),
    });
    expect(r.code, r.stderr).toBe(0);
    for (const line of ndjson(r.stdout)) expect(r.stderr).toContain(`::add-mask::${line.awsSecret as string}\n`);
  });

  it('refuses a user named twice, and an empty users file, as usage errors', async () => {
    expect((await admin(['getsecret', '-u', 'a', '-u', 'a'])).code).toBe(2);
    const empty = join(work, 'empty.txt');
    writeFileSync(empty, '# nobody\n\n');
    expect((await admin(['getsecret', '--users-file', empty])).code).toBe(2);
    expect((await admin(['getsecret', '--users-file', join(work, 'missing.txt')])).code).toBe(9);
    expect(await gw.requests()).toEqual([]);
  });
});

describe('batch revoke', () => {
  it('refuses without --yes on a non-terminal and sends nothing', async () => {
    const r = await admin(['revokesecret', '-u', 'a', '-u', 'b']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    expect(await gw.requests()).toEqual([]);
  });

  it('revokes several users with --yes and reports each; a missing one exits 5', async () => {
    expect((await admin(['getsecret', '-u', 'r1', '-u', 'r3', '--json'])).code).toBe(0);
    const r = await admin(['revokesecret', '--yes', '--users-file', '-'], { input: 'r1\nr2\nr3\n' });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/revoked the S3 secret of r1/);
    expect(r.stderr).toMatch(/r2: S3_SECRET_NOT_FOUND/);
    expect(r.stderr).toMatch(/revoked the S3 secret of r3/);
    expect(await gw.secrets()).toEqual({});
  });
});

describe('CI: keytab login', () => {
  it('provisions with --keytab and creates no credential cache file anywhere', async () => {
    const tmpBefore = readdirSync(tmpdir()).filter((f) => f.startsWith('krb5cc'));
    const realmBefore = readdirSync(realm.dir).sort();
    const r = await runCli(
      [
        'getsecret',
        '--keytab',
        adminKeytab,
        '--principal',
        `provisioner@${realm.name}`,
        '-u',
        'ci-1',
        '-u',
        'ci-2',
        '--json',
        '--endpoint',
        gw.url,
      ],
      {
        // No KRB5CCNAME at all: MIT would default to FILE:/tmp/krb5cc_<uid>.
        env: Object.fromEntries(
          Object.entries(withEnv(realm, { KRB5_CLIENT_KTNAME: '' })).filter(([k]) => k !== 'KRB5CCNAME'),
        ),
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(ndjson(r.stdout).map((l) => l.user)).toEqual(['ci-1', 'ci-2']);
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('krb5cc'))).toEqual(tmpBefore);
    expect(readdirSync(realm.dir).sort()).toEqual(realmBefore);
  });
});
