/** runGetSecret in-process, against a fake secret service: no KDC, no gateway, no subprocess. */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runGetSecret, type GetSecretOptions } from '../../src/commands/getsecret.js';
import { SecretExistsError, SecretNotFoundError, ForbiddenError } from '../../src/errors.js';
import { createFakeService, fakeDeps, secretOf } from '../support/fake-service.js';

const ENDPOINT = { endpoint: 'https://s3g.test:19879' } satisfies GetSecretOptions;
const exists = () => new SecretExistsError('S3_SECRET_ALREADY_EXISTS: exists');
const later =
  <T>(ms: number, value: T) =>
  () =>
    new Promise<T>((r) => setTimeout(() => r(value), ms));

describe('getsecret, in-process', () => {
  it('prints your own secret exactly as ozone s3 getsecret does', async () => {
    const service = createFakeService().expect('get', undefined, secretOf('alice@EX'));
    const t = fakeDeps(service);
    expect(await runGetSecret(ENDPOINT, t.deps)).toBe(0);
    expect(t.stdout()).toBe('awsAccessKey=alice@EX\nawsSecret=secret-alice@EX-1\n');
    service.assertDone();
    expect(service.closed).toBe(true);
  });

  it('--if-exists rotate: revoke, then get a new one, and says the old key stops working', async () => {
    const service = createFakeService()
      .expect('get', 'bob', exists())
      .expect('revoke', 'bob', undefined)
      .expect('get', 'bob', secretOf('bob', 2));
    const t = fakeDeps(service);
    expect(await runGetSecret({ ...ENDPOINT, user: ['bob'], ifExists: 'rotate' }, t.deps)).toBe(0);
    expect(service.calls.map((c) => c.op)).toEqual(['get', 'revoke', 'get']);
    expect(t.stdout()).toContain('awsSecret=secret-bob-2');
    expect(t.stderr()).toMatch(/revoked the old S3 secret of bob.*stops working/);
    service.assertDone();
  });

  it('--if-exists rotate goes on when someone else revoked in between (NOT_FOUND)', async () => {
    const service = createFakeService()
      .expect('get', 'bob', exists())
      .expect('revoke', 'bob', new SecretNotFoundError('S3_SECRET_NOT_FOUND'))
      .expect('get', 'bob', secretOf('bob', 2));
    const t = fakeDeps(service);
    expect(await runGetSecret({ ...ENDPOINT, user: ['bob'], ifExists: 'rotate' }, t.deps)).toBe(0);
    service.assertDone();
  });

  it('--if-exists skip: exit 0, no secret, a JSON line that says skipped', async () => {
    const service = createFakeService().expect('get', undefined, exists());
    const t = fakeDeps(service);
    expect(await runGetSecret({ ...ENDPOINT, ifExists: 'skip', json: true }, t.deps)).toBe(0);
    expect(t.stdout()).toBe('{"user":null,"skipped":true}\n');
    expect(t.stderr()).toMatch(/skipped/);
  });

  it('without --if-exists: the error with its hint, exit 6', async () => {
    const service = createFakeService().expect('get', undefined, exists());
    const t = fakeDeps(service);
    await expect(runGetSecret(ENDPOINT, t.deps)).rejects.toMatchObject({ exitCode: 6 });
    expect(t.stdout()).toBe('');
  });

  it('prints a batch in input order whatever order the answers come in', async () => {
    const service = createFakeService()
      .expect('get', 'a', later(30, secretOf('a')))
      .expect('get', 'b', later(10, secretOf('b')))
      .expect('get', 'c', later(0, secretOf('c')));
    const t = fakeDeps(service);
    expect(await runGetSecret({ ...ENDPOINT, user: ['a', 'b', 'c'], json: true }, t.deps)).toBe(0);
    expect(
      t
        .stdout()
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { user: string }).user),
    ).toEqual(['a', 'b', 'c']);
    expect(t.stderr()).toBe('ozs3: 3 users: 3 done\n');
  });

  it('exits with the first failure in input order, not in completion order', async () => {
    const service = createFakeService()
      .expect('get', 'a', later(5, secretOf('a')))
      .expect('get', 'b', later(30, new ForbiddenError('forbidden (403)')))
      .expect('get', 'c', exists());
    const t = fakeDeps(service);
    expect(await runGetSecret({ ...ENDPOINT, user: ['a', 'b', 'c'], json: true }, t.deps)).toBe(4);
    const lines = t
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.error && (l.error as { code: string }).code)).toEqual([
      undefined,
      'FORBIDDEN',
      'S3_SECRET_ALREADY_EXISTS',
    ]);
  });

  it('passes the lost-response guidance through, hint and all', async () => {
    const lost = new SecretExistsError('S3_SECRET_ALREADY_EXISTS for you after a lost response', {
      hint: 'get a new one with --if-exists rotate (the lost secret stops working)',
    });
    const t = fakeDeps(createFakeService().expect('get', undefined, lost));
    await expect(runGetSecret(ENDPOINT, t.deps)).rejects.toMatchObject({
      exitCode: 6,
      hint: expect.stringContaining('--if-exists rotate'),
    });
  });

  it('--write-aws checks the AWS files before any request: a bad file stops the run, nothing asked', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ozs3-cmd-'));
    mkdirSync(join(home, '.aws', 'credentials'), { recursive: true }); // a directory where the file goes
    const t = fakeDeps(undefined, {}, { homedir: home });
    await expect(runGetSecret({ ...ENDPOINT, writeAws: true }, t.deps)).rejects.toMatchObject({ exitCode: 9 });
  });

  it('--write-aws writes the profile and prints no secret', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ozs3-cmd-'));
    const t = fakeDeps(createFakeService().expect('get', undefined, secretOf('alice@EX')), {}, { homedir: home });
    expect(await runGetSecret({ ...ENDPOINT, writeAws: true, profile: 'ozone' }, t.deps)).toBe(0);
    expect(t.stdout()).toBe('');
    expect(readFileSync(join(home, '.aws', 'credentials'), 'utf8')).toContain(
      'aws_secret_access_key = secret-alice@EX-1',
    );
  });

  it('refuses to print a secret to a discarded stdout, before asking for it', async () => {
    const t = fakeDeps(undefined, { stdoutDiscarded: 'closed' });
    await expect(runGetSecret(ENDPOINT, t.deps)).rejects.toMatchObject({ exitCode: 2, message: /stdout is closed/ });
  });

  it('stdout failing mid-batch: no new requests, each undelivered secret named with its recovery, exit 9', async () => {
    const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
    const service = createFakeService();
    for (const u of users.slice(0, 3)) service.expect('get', u, later(5, secretOf(u)));
    const t = fakeDeps(service, { failStdoutAt: { write: 1, errno: 'EPIPE' } });
    expect(await runGetSecret({ ...ENDPOINT, user: users, json: true, concurrency: 1 }, t.deps)).toBe(9);
    expect(service.calls.map((c) => c.user)).toEqual(['u1', 'u2']);
    expect(t.stdout()).toContain('"user":"u1"');
    expect(t.stderr()).toMatch(
      /u2: the new S3 secret was created but not delivered \(stdout failed: EPIPE\).*ozs3 getsecret -u 'u2' --if-exists rotate/,
    );
    expect(t.stderr()).not.toMatch(/u1: the new S3 secret/);
    expect(t.stderr()).toMatch(/stopped: stdout failed: 1 done, 1 not delivered, 4 not started/);
  });

  it('a signal mid-batch: no new requests, what arrived is delivered, a summary, exit 130', async () => {
    const users = ['u1', 'u2', 'u3', 'u4'];
    const service = createFakeService();
    const t = fakeDeps(service);
    service.expect('get', 'u1', later(0, secretOf('u1')));
    service.expect('get', 'u2', async () => {
      t.interrupt('SIGINT');
      return secretOf('u2');
    });
    expect(await runGetSecret({ ...ENDPOINT, user: users, json: true, concurrency: 1 }, t.deps)).toBe(130);
    expect(t.stdout().trim().split('\n')).toHaveLength(2);
    expect(t.stderr()).toMatch(/interrupted by SIGINT: 2 done, 2 not started/);
    service.assertDone();
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s mid-batch: the same stop and summary, exit %i', async (signal, code) => {
    const service = createFakeService();
    const t = fakeDeps(service);
    service.expect('get', 'u1', async () => {
      t.interrupt(signal);
      return secretOf('u1');
    });
    expect(await runGetSecret({ ...ENDPOINT, user: ['u1', 'u2', 'u3'], json: true, concurrency: 1 }, t.deps)).toBe(
      code,
    );
    expect(t.stdout().trim().split('\n')).toHaveLength(1);
    expect(t.stderr()).toMatch(new RegExp(`interrupted by ${signal}: 1 done, 2 not started`));
    service.assertDone();
  });
});
