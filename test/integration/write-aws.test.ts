/**
 * `getsecret --write-aws` and `revokesecret --write-aws` end to end: the CLI as a subprocess writes
 * into files that already hold a user's hand-edited settings, and the real AWS CLI v2 and boto3 read
 * the result.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';

const AWS = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';

let realm: Realm;
let gw: Gateway;
let cc: string;

const CONFIG = [
  '# team settings, hand-edited',
  '[default]',
  'region = eu-central-1',
  'output = json',
  '',
  '; the SSO login',
  '[sso-session corp]',
  'sso_start_url = https://corp.example.com/start',
  'sso_region = us-east-1',
  '',
  '[profile ozone]',
  'region = us-east-2',
  's3 =',
  '    addressing_style = path',
  '',
  '[profile other]',
  'sso_session = corp',
  'sso_account_id = 111122223333',
  'sso_role_name = Dev',
  '',
].join('\n');
const CREDENTIALS = [
  '[legacy]',
  'aws_access_key_id = AKIALEGACY',
  'aws_secret_access_key = legacy/secret+key',
  '',
].join('\n');

beforeAll(async () => {
  assertBuilt();
  for (const [tool, check] of [
    [AWS, () => execFileSync(AWS, ['--version'], { encoding: 'utf8' })],
    [PYTHON, () => execFileSync(PYTHON, ['-c', 'import boto3'], { encoding: 'utf8' })],
  ] as const) {
    try {
      const out = check();
      if (tool === AWS && !out.startsWith('aws-cli/2')) throw new Error(`not AWS CLI v2: ${out}`);
    } catch (error) {
      throw new Error(`${tool} is needed (Debian packages awscli, python3-boto3): ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  realm = await startRealm();
  for (const user of ['alice', 'admin']) await realm.addPrincipal(user, { password: `pw-${user}` });
  cc = await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-alice' });
  gw = await startGateway(realm, { admins: ['admin'] });
});

afterAll(async () => {
  await gw?.close();
  await realm?.stop();
});

function freshHome(): { home: string; config: string; credentials: string; env: Record<string, string> } {
  const home = mkdtempSync(join(tmpdir(), 'ozs3-home-'));
  mkdirSync(join(home, '.aws'), { mode: 0o700 });
  const config = join(home, '.aws', 'config');
  const credentials = join(home, '.aws', 'credentials');
  writeFileSync(config, CONFIG);
  writeFileSync(credentials, CREDENTIALS, { mode: 0o600 });
  return { home, config, credentials, env: cacheEnv(realm, cc, { HOME: home }) };
}

function ozs3(env: Record<string, string>, args: string[]): Promise<CliResult> {
  return runCli([...args, '--endpoint', gw.url], { env });
}

function awsGet(env: Record<string, string>, key: string, profile: string): string {
  return execFileSync(AWS, ['configure', 'get', key, '--profile', profile], { env, encoding: 'utf8' }).trim();
}

function boto3(
  env: Record<string, string>,
  profile: string,
): { key: string; secret: string; region: string; sigv: string; endpoint: string | null } {
  const script = `
import boto3, json, sys
s = boto3.Session(profile_name=sys.argv[1])
c = s.get_credentials()
cfg = s._session.get_scoped_config()
print(json.dumps({"key": c.access_key, "secret": c.secret_key, "region": s.region_name,
  "sigv": cfg.get("s3", {}).get("signature_version"), "endpoint": cfg.get("endpoint_url")}))`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script, profile], { env, encoding: 'utf8' }));
}

describe('getsecret --write-aws', () => {
  it('updates an existing profile in place and keeps every other line, read back by the AWS CLI and boto3', async () => {
    const { config, credentials, env } = freshHome();
    const r = await ozs3(env, [
      'getsecret',
      '--write-aws',
      '--profile',
      'ozone',
      '--s3-endpoint',
      'https://s3g.example.com:9879',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/wrote profile 'ozone'/);
    const secret = (await gw.secrets())[`alice@${realm.name}`]!;
    expect(r.stderr).not.toContain(secret);

    // Exactly the owned keys changed: region kept (the profile had one), s3 block extended, endpoint added.
    expect(readFileSync(config, 'utf8')).toBe(
      CONFIG.replace(
        '[profile ozone]\nregion = us-east-2\ns3 =\n    addressing_style = path\n',
        '[profile ozone]\nregion = us-east-2\ns3 =\n    addressing_style = path\n    signature_version = s3v4\nendpoint_url = https://s3g.example.com:9879\n',
      ),
    );
    expect(readFileSync(credentials, 'utf8')).toBe(
      `${CREDENTIALS}[ozone]\naws_access_key_id = alice@${realm.name}\naws_secret_access_key = ${secret}\n`,
    );
    expect(statSync(credentials).mode & 0o777).toBe(0o600);

    expect(awsGet(env, 'aws_access_key_id', 'ozone')).toBe(`alice@${realm.name}`);
    expect(awsGet(env, 'aws_secret_access_key', 'ozone')).toBe(secret);
    expect(awsGet(env, 'region', 'ozone')).toBe('us-east-2');
    expect(awsGet(env, 's3.signature_version', 'ozone')).toBe('s3v4');
    expect(awsGet(env, 's3.addressing_style', 'ozone')).toBe('path');
    expect(awsGet(env, 'aws_access_key_id', 'legacy')).toBe('AKIALEGACY');
    expect(awsGet(env, 'sso_session', 'other')).toBe('corp');
    expect(boto3(env, 'ozone')).toEqual({
      key: `alice@${realm.name}`,
      secret,
      region: 'us-east-2',
      sigv: 's3v4',
      endpoint: 'https://s3g.example.com:9879',
    });
    expect(boto3(env, 'legacy')).toMatchObject({ key: 'AKIALEGACY', secret: 'legacy/secret+key', region: null });
    await gw.reset();
  });

  it('writes a new default profile as [default], never [profile default], with region us-west-1 only when absent', async () => {
    const { config, credentials, env } = freshHome();
    writeFileSync(config, '# nothing yet\n');
    const r = await ozs3(env, ['getsecret', '--write-aws']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(config, 'utf8')).toBe(
      '# nothing yet\n[default]\nregion = us-west-1\ns3 =\n    signature_version = s3v4\n',
    );
    expect(readFileSync(credentials, 'utf8')).toMatch(/\n\[default\]\naws_access_key_id = alice@/);
    expect(readFileSync(config, 'utf8')).not.toContain('[profile default]');
    expect(boto3(env, 'default')).toMatchObject({ key: `alice@${realm.name}`, region: 'us-west-1', sigv: 's3v4' });
    await gw.reset();
  });

  it('prints the secret too when -e or --json is given with --write-aws', async () => {
    const { env } = freshHome();
    const r = await ozs3(env, ['getsecret', '--write-aws', '--profile', 'p1', '--json', '--region', 'r1']);
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(awsGet(env, 'aws_secret_access_key', 'p1')).toBe(printed.awsSecret);
    expect(awsGet(env, 'region', 'p1')).toBe('r1');
    await gw.reset();
  });

  it('keeps a symlinked credentials file a link and updates its target', async () => {
    const { home, credentials, env } = freshHome();
    const target = join(home, 'real-credentials');
    writeFileSync(target, CREDENTIALS, { mode: 0o600 });
    execFileSync('rm', [credentials]);
    symlinkSync(target, credentials);
    const r = await ozs3(env, ['getsecret', '--write-aws', '--profile', 'linked']);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(credentials).isSymbolicLink()).toBe(true);
    expect(readlinkSync(credentials)).toBe(target);
    expect(readFileSync(target, 'utf8')).toContain('[linked]\naws_access_key_id = alice@');
    await gw.reset();
  });

  it('refuses an ambiguous config with exit 9 and the line number before asking for a secret', async () => {
    const { config, credentials, env } = freshHome();
    writeFileSync(config, '[default]\nregion = a\n[default]\nregion = b\n');
    const r = await ozs3(env, ['getsecret', '--write-aws']);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/^ozs3: .*config:3/m);
    expect(readFileSync(config, 'utf8')).toBe('[default]\nregion = a\n[default]\nregion = b\n');
    expect(readFileSync(credentials, 'utf8')).toBe(CREDENTIALS);
    expect(await gw.requests()).toEqual([]);
    expect(await gw.secrets()).toEqual({});
  });

  it('refuses a profile name the AWS SDKs would drop, as a usage problem before any request', async () => {
    const { env } = freshHome();
    const r = await ozs3(env, ['getsecret', '--write-aws', '--profile', 'bad name']);
    expect([2, 9]).toContain(r.code);
    expect(r.stderr).toMatch(/profile/);
    expect(await gw.requests()).toEqual([]);
  });

  it('lets eight concurrent ozs3 processes write eight profiles without losing one', async () => {
    const { config, credentials, env } = freshHome();
    const adminCc = await realm.kinit('admin', { password: 'pw-admin', ccache: 'cc-admin' });
    const adminEnv = { ...env, KRB5CCNAME: adminCc };
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ozs3(adminEnv, ['getsecret', '-u', `user${i}`, '--write-aws', '--profile', `p${i}`, '--region', `r${i}`]),
      ),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const store = await gw.secrets();
    for (let i = 0; i < 8; i++) {
      expect(boto3(env, `p${i}`)).toMatchObject({
        key: `user${i}`,
        secret: store[`user${i}`],
        region: `r${i}`,
        sigv: 's3v4',
      });
    }
    expect(awsGet(env, 'aws_access_key_id', 'legacy')).toBe('AKIALEGACY');
    expect(statSync(credentials).mode & 0o777).toBe(0o600);
    expect(readFileSync(config, 'utf8').startsWith(CONFIG)).toBe(true);
    expect(existsSync(`${credentials}.lock`)).toBe(false);
    await gw.reset();
  });
});

describe('revokesecret --write-aws', () => {
  it('removes the key pair from the profile that holds the revoked key, and refuses before revoking otherwise', async () => {
    const { credentials, env } = freshHome();
    expect((await ozs3(env, ['getsecret', '--write-aws', '--profile', 'ozone'])).code).toBe(0);
    writeFileSync(
      credentials,
      `${readFileSync(credentials, 'utf8')}[copy]\naws_access_key_id = someone-else\naws_secret_access_key = x\n`,
    );
    const other = await ozs3(env, ['revokesecret', '--yes', '--write-aws', '--profile', 'copy']);
    expect(other.code, other.stderr).toBe(9);
    expect(other.stderr).toMatch(/profile 'copy' .* holds the key of someone-else, not of alice@.*; nothing revoked/);
    expect(readFileSync(credentials, 'utf8')).toContain('aws_access_key_id = someone-else');
    expect((await gw.requests()).filter((q) => q.method === 'DELETE')).toEqual([]);

    const r = await ozs3(env, ['revokesecret', '--yes', '--write-aws', '--profile', 'ozone']);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(credentials, 'utf8');
    expect(text).not.toMatch(/\[ozone\]\naws_access_key_id/);
    expect(text).toContain('[legacy]\naws_access_key_id = AKIALEGACY');
    await gw.reset();
  });
});
