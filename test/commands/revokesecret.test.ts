/** runRevokeSecret and runSetSecret in-process, against a fake secret service. */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { runRevokeSecret, type RevokeSecretOptions } from '../../src/commands/revokesecret.js';
import { runSetSecret } from '../../src/commands/setsecret.js';
import { PromptAbortedError } from '../../src/io.js';
import { SecretNotFoundError } from '../../src/errors.js';
import { createFakeService, fakeDeps } from '../support/fake-service.js';

const ENDPOINT = { endpoint: 'https://s3g.test:19879' } satisfies RevokeSecretOptions;

function homeWith(credentials: string): string {
  const home = mkdtempSync(join(tmpdir(), 'ozs3-cmd-'));
  mkdirSync(join(home, '.aws'));
  writeFileSync(join(home, '.aws', 'credentials'), credentials, { mode: 0o600 });
  return home;
}

describe('revokesecret, in-process', () => {
  it('refuses without a terminal and without --yes, asking nothing of the server', async () => {
    const t = fakeDeps(undefined);
    await expect(runRevokeSecret(ENDPOINT, t.deps)).rejects.toMatchObject({
      exitCode: 2,
      message: /confirmation needed/,
    });
  });

  it.each([
    ['n', /not confirmed/],
    ['', /not confirmed/],
    [new PromptAbortedError('Ctrl-C'), /not revoked: no answer \(Ctrl-C\)/],
    [new PromptAbortedError('end of input'), /not revoked: no answer \(end of input\)/],
  ])('sends nothing when the answer is %j', async (answer, message) => {
    const t = fakeDeps(undefined, { tty: true, answers: [answer] });
    await expect(runRevokeSecret({ ...ENDPOINT, user: ['bob'] }, t.deps)).rejects.toMatchObject({
      exitCode: 2,
      code: 'NOT_CONFIRMED',
      message,
    });
    expect(t.stderr()).toContain('Revoke the S3 secret for bob? [y/N] ');
  });

  it('revokes after y, and says so', async () => {
    const service = createFakeService().expect('revoke', 'bob', undefined);
    const t = fakeDeps(service, { tty: true, answers: ['y'] });
    expect(await runRevokeSecret({ ...ENDPOINT, user: ['bob'] }, t.deps)).toBe(0);
    expect(t.stderr()).toMatch(/revoked the S3 secret of bob/);
    service.assertDone();
  });

  it('tells each revocation as it happens, and the first failure in input order', async () => {
    const service = createFakeService()
      .expect('revoke', 'a', () => new Promise((r) => setTimeout(() => r(undefined), 20)))
      .expect('revoke', 'b', new SecretNotFoundError('S3_SECRET_NOT_FOUND: none'))
      .expect('revoke', 'c', undefined);
    const t = fakeDeps(service);
    expect(await runRevokeSecret({ ...ENDPOINT, user: ['a', 'b', 'c'], yes: true }, t.deps)).toBe(5);
    const lines = t.stderr().trim().split('\n');
    // c finished before a: its line comes first (as it happened), a's after.
    expect(lines.indexOf('ozs3: revoked the S3 secret of c')).toBeLessThan(
      lines.indexOf('ozs3: revoked the S3 secret of a'),
    );
    expect(lines.at(-1)).toBe('ozs3: 3 users: 2 done, 1 failed');
  });

  describe('--write-aws checks the profile before the DELETE', () => {
    it('refuses a profile that does not exist (exit 9), revoking nothing', async () => {
      const home = homeWith('[ozone]\naws_access_key_id = bob\naws_secret_access_key = x\n');
      const t = fakeDeps(undefined, {}, { homedir: home });
      await expect(
        runRevokeSecret({ ...ENDPOINT, user: ['bob'], yes: true, writeAws: true, profile: 'nosuch' }, t.deps),
      ).rejects.toMatchObject({ exitCode: 9, message: /no profile 'nosuch'/ });
    });

    it('refuses a profile that holds another key (exit 9), revoking nothing', async () => {
      const home = homeWith('[ozone]\naws_access_key_id = carol\naws_secret_access_key = x\n');
      const t = fakeDeps(undefined, {}, { homedir: home });
      await expect(
        runRevokeSecret({ ...ENDPOINT, user: ['bob'], yes: true, writeAws: true, profile: 'ozone' }, t.deps),
      ).rejects.toMatchObject({ exitCode: 9, message: /holds the key of carol, not of bob; nothing revoked/ });
    });

    it('refuses an unreadable credentials file (exit 9), revoking nothing', async () => {
      if (process.getuid?.() === 0) {
        // root reads everything: use a directory in the file's place instead.
        const home = mkdtempSync(join(tmpdir(), 'ozs3-cmd-'));
        mkdirSync(join(home, '.aws', 'credentials'), { recursive: true });
        const t = fakeDeps(undefined, {}, { homedir: home });
        await expect(
          runRevokeSecret({ ...ENDPOINT, user: ['bob'], yes: true, writeAws: true }, t.deps),
        ).rejects.toMatchObject({ exitCode: 9 });
        return;
      }
      const home = homeWith('[default]\naws_access_key_id = bob\n');
      chmodSync(join(home, '.aws', 'credentials'), 0o000);
      const t = fakeDeps(undefined, {}, { homedir: home });
      await expect(
        runRevokeSecret({ ...ENDPOINT, user: ['bob'], yes: true, writeAws: true }, t.deps),
      ).rejects.toMatchObject({
        exitCode: 9,
      });
    });

    it('removes the key pair once revoked', async () => {
      const home = homeWith('[ozone]\naws_access_key_id = bob\naws_secret_access_key = x\n');
      const service = createFakeService().expect('revoke', 'bob', undefined);
      const t = fakeDeps(service, {}, { homedir: home });
      expect(
        await runRevokeSecret({ ...ENDPOINT, user: ['bob'], yes: true, writeAws: true, profile: 'ozone' }, t.deps),
      ).toBe(0);
      expect(readFileSync(join(home, '.aws', 'credentials'), 'utf8')).toBe('[ozone]\n');
    });
  });
});

describe('setsecret, in-process', () => {
  const OM = { om: 'om.test' };

  it('refuses a secret shorter than 8 characters before sending', async () => {
    const t = fakeDeps(undefined);
    await expect(runSetSecret({ ...OM, secret: 'short' }, t.deps)).rejects.toMatchObject({
      exitCode: 2,
      message: /5 characters; Ozone wants at least 8/,
    });
  });

  it('needs the secret from -s or --secret-file, not both', async () => {
    const t = fakeDeps(undefined);
    await expect(runSetSecret({ ...OM }, t.deps)).rejects.toMatchObject({
      exitCode: 2,
      hint: expect.stringContaining('--secret-file -'),
    });
    await expect(runSetSecret({ ...OM, secret: 'x'.repeat(9), secretFile: '-' }, t.deps)).rejects.toMatchObject({
      exitCode: 2,
    });
  });

  it('reads the first line of --secret-file - and prints like ozone s3 setsecret', async () => {
    const service = createFakeService().expect('set', undefined, {
      awsAccessKey: 'alice@EX',
      awsSecret: 'a-chosen-secret',
    });
    const t = fakeDeps(service, { stdin: 'a-chosen-secret\n' });
    expect(await runSetSecret({ ...OM, secretFile: '-' }, t.deps)).toBe(0);
    expect(t.stdout()).toBe('awsAccessKey=alice@EX\nawsSecret=a-chosen-secret\n');
    service.assertDone();
  });

  it('refuses a REST plan before opening anything', async () => {
    const t = fakeDeps(undefined);
    await expect(runSetSecret({ endpoint: 'https://g:1', secret: 'x'.repeat(9) }, t.deps)).rejects.toMatchObject({
      exitCode: 2,
      message: /needs the OzoneManager RPC/,
    });
  });

  it('is OM only: over REST it says how to name the OM', async () => {
    const { RestSecretService } = await import('../../src/rest/service.js');
    const rest = new RestSecretService({
      endpoint: new URL('https://g/secret'),
      servicePrincipal: 'HTTP/g',
      negotiator: () => Promise.reject(new Error('never called')),
      mutualAuth: true,
      timeoutMs: 1000,
      retries: 0,
      dispatcher: {} as Dispatcher,
    });
    await expect(rest.setSecret()).rejects.toMatchObject({ exitCode: 2, hint: expect.stringContaining('--om') });
  });
});
