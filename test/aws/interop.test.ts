import { execFile, execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fromIni } from '@aws-sdk/credential-providers';
import { loadSharedConfigFiles as loadSharedConfigFilesCurrent } from '@smithy/core/config';
import { loadSharedConfigFiles } from '@smithy/shared-ini-file-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAwsProfile, type AwsPaths } from '../../src/aws/write-profile.js';

const run = promisify(execFile);

// The Debian packages, not the pyenv shims first on PATH (aws-cli v1, a python without boto3).
const AWS_CLI = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';

const CONFIG_BEFORE = [
  '# Team settings — keep',
  '[default]',
  'region = eu-central-1',
  'output = json',
  '',
  '[profile legacy]',
  'region = us-east-2',
  's3 =',
  '    addressing_style = path',
  '    max_concurrent_requests = 20',
  '',
  '[profile ozone]',
  'region = ap-south-1 ; old',
  's3 =',
  '  addressing_style = path',
  '; trailing comment',
  '',
  '[sso-session corp]',
  'sso_start_url = https://corp.awsapps.com/start',
  'sso_region = us-east-1',
  'sso_registration_scopes = sso:account:access',
  '',
  '[profile sso-user]',
  'sso_session = corp',
  'sso_account_id = 111122223333',
  'sso_role_name = ReadOnly',
  'region = us-east-1',
  '',
].join('\n');

const CONFIG_AFTER = [
  '# Team settings — keep',
  '[default]',
  'region = eu-central-1',
  'output = json',
  's3 =',
  '    signature_version = s3v4',
  '',
  '[profile legacy]',
  'region = us-east-2',
  's3 =',
  '    addressing_style = path',
  '    max_concurrent_requests = 20',
  '',
  '[profile ozone]',
  'region = us-west-1',
  's3 =',
  '  addressing_style = path',
  '  signature_version = s3v4',
  'endpoint_url = https://s3g.example.com:9879',
  '; trailing comment',
  '',
  '[sso-session corp]',
  'sso_start_url = https://corp.awsapps.com/start',
  'sso_region = us-east-1',
  'sso_registration_scopes = sso:account:access',
  '',
  '[profile sso-user]',
  'sso_session = corp',
  'sso_account_id = 111122223333',
  'sso_role_name = ReadOnly',
  'region = us-east-1',
  '[profile fresh]',
  'region = us-west-1',
  'endpoint_url = http://127.0.0.1:9878',
  's3 =',
  '    signature_version = s3v4',
  '[profile team.ozone]',
  'region = eu-west-3',
  's3 =',
  '    signature_version = s3v4',
  '',
].join('\n');

// CRLF and no final newline, to prove both survive for every reader.
const CREDENTIALS_BEFORE = [
  '# managed by hand',
  '[default]',
  'aws_access_key_id = DEFAULTAK',
  'aws_secret_access_key = DEFAULTSK',
  '',
  '[legacy]',
  'aws_access_key_id = LEGACYAK',
  'aws_secret_access_key = LEGACY/SK+x==',
  '[ozone]',
  'aws_access_key_id = OLDAK',
  'aws_secret_access_key = OLDSK',
  'aws_session_token = OLDTOKEN',
].join('\r\n');

const CREDENTIALS_AFTER = [
  '# managed by hand',
  '[default]',
  'aws_access_key_id = DFAK2',
  'aws_secret_access_key = dfsk2',
  '',
  '[legacy]',
  'aws_access_key_id = LEGACYAK',
  'aws_secret_access_key = LEGACY/SK+x==',
  '[ozone]',
  'aws_access_key_id = OZAK1',
  'aws_secret_access_key = ab/c+d==x;y#z',
  '[fresh]',
  'aws_access_key_id = FRAK1',
  'aws_secret_access_key = fresh/SK+1',
  '[team.ozone]',
  'aws_access_key_id = TMAK1',
  'aws_secret_access_key = tm/sk',
  '',
].join('\r\n');

interface Expected {
  accessKey: string;
  secret: string;
  region: string;
  signatureVersion?: string;
  endpointUrl?: string;
}

const EXPECTED: Record<string, Expected> = {
  ozone: {
    accessKey: 'OZAK1',
    secret: 'ab/c+d==x;y#z',
    region: 'us-west-1',
    signatureVersion: 's3v4',
    endpointUrl: 'https://s3g.example.com:9879',
  },
  fresh: {
    accessKey: 'FRAK1',
    secret: 'fresh/SK+1',
    region: 'us-west-1',
    signatureVersion: 's3v4',
    endpointUrl: 'http://127.0.0.1:9878',
  },
  default: { accessKey: 'DFAK2', secret: 'dfsk2', region: 'eu-central-1', signatureVersion: 's3v4' },
  'team.ozone': { accessKey: 'TMAK1', secret: 'tm/sk', region: 'eu-west-3', signatureVersion: 's3v4' },
  legacy: { accessKey: 'LEGACYAK', secret: 'LEGACY/SK+x==', region: 'us-east-2' },
};

let dir: string;
let paths: AwsPaths;
let env: NodeJS.ProcessEnv;

function requireTool(check: () => void, what: string): void {
  try {
    check();
  } catch (error) {
    throw new Error(
      `interop tests need ${what}; install it (Debian: apt-get install awscli python3-boto3): ${String(error)}`,
      { cause: error },
    );
  }
}

beforeAll(async () => {
  requireTool(() => {
    if (!existsSync(AWS_CLI)) throw new Error(`${AWS_CLI} does not exist`);
    const version = execFileSync(AWS_CLI, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    if (!version.startsWith('aws-cli/2')) throw new Error(`${AWS_CLI} is ${version.trim()}, not AWS CLI v2`);
  }, `the AWS CLI v2 at ${AWS_CLI}`);
  requireTool(() => execFileSync(PYTHON, ['-c', 'import boto3'], { stdio: 'pipe' }), `boto3 for ${PYTHON}`);

  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ozs3-interop-'));
  paths = { config: path.join(dir, 'aws', 'config'), credentials: path.join(dir, 'aws', 'credentials') };
  await fs.mkdir(path.join(dir, 'home'));
  await fs.mkdir(path.join(dir, 'aws'));
  await fs.writeFile(paths.config, CONFIG_BEFORE, { mode: 0o644 });
  await fs.writeFile(paths.credentials, CREDENTIALS_BEFORE, { mode: 0o600 });
  env = {
    PATH: '/usr/bin:/bin',
    HOME: path.join(dir, 'home'),
    LANG: 'C.UTF-8',
    AWS_CONFIG_FILE: paths.config,
    AWS_SHARED_CREDENTIALS_FILE: paths.credentials,
    AWS_EC2_METADATA_DISABLED: 'true',
  };

  await writeAwsProfile({
    profile: 'ozone',
    accessKey: 'OZAK1',
    secret: 'ab/c+d==x;y#z',
    region: 'us-west-1',
    s3Endpoint: 'https://s3g.example.com:9879',
    paths,
  });
  await writeAwsProfile({
    profile: 'fresh',
    accessKey: 'FRAK1',
    secret: 'fresh/SK+1',
    s3Endpoint: 'http://127.0.0.1:9878',
    paths,
  });
  await writeAwsProfile({ profile: 'default', accessKey: 'DFAK2', secret: 'dfsk2', paths });
  await writeAwsProfile({ profile: 'team.ozone', accessKey: 'TMAK1', secret: 'tm/sk', region: 'eu-west-3', paths });
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function awsCli(...args: string[]): Promise<string> {
  const { stdout } = await run(AWS_CLI, args, { env, encoding: 'utf8' });
  return stdout.trim();
}

describe('files written by ozs3, read by the real readers', () => {
  it('change only the owned keys: every other byte, CRLF and comments included, is as before', async () => {
    expect(await fs.readFile(paths.config, 'utf8')).toBe(CONFIG_AFTER);
    expect(await fs.readFile(paths.credentials, 'utf8')).toBe(CREDENTIALS_AFTER);
  });

  it('AWS CLI v2 (aws configure) reads new, updated and untouched profiles', async () => {
    const get = (profile: string, key: string) => awsCli('configure', 'get', key, '--profile', profile);
    const checks: [Promise<string>, string][] = [];
    for (const [profile, want] of Object.entries(EXPECTED)) {
      checks.push([
        awsCli('configure', 'export-credentials', '--profile', profile).then((out) => {
          const { AccessKeyId, SecretAccessKey, SessionToken } = JSON.parse(out) as Record<string, string>;
          return JSON.stringify([AccessKeyId, SecretAccessKey, SessionToken]);
        }),
        JSON.stringify([want.accessKey, want.secret, undefined]),
      ]);
      if (profile !== 'legacy') checks.push([get(profile, 'region'), want.region]);
    }
    // Each call costs ~0.6 s of CPU: nested and endpoint keys are checked on the profiles that differ.
    checks.push([get('ozone', 's3.signature_version'), 's3v4']);
    checks.push([get('fresh', 's3.signature_version'), 's3v4']);
    checks.push([get('default', 's3.signature_version'), 's3v4']);
    checks.push([get('ozone', 's3.addressing_style'), 'path']);
    checks.push([get('ozone', 'endpoint_url'), 'https://s3g.example.com:9879']);
    checks.push([get('sso-user', 'sso_session'), 'corp']);
    const got = await Promise.all(checks.map(([value]) => value));
    expect(got).toEqual(checks.map(([, want]) => want));
  }, 60_000);

  it('boto3 reads credentials, region and the nested s3 block', async () => {
    const script = `
import json, sys, boto3
out = {}
for name in sys.argv[1:]:
    session = boto3.Session(profile_name=name)
    creds = session.get_credentials()
    scoped = session._session.get_scoped_config()
    out[name] = {"accessKey": creds.access_key, "secret": creds.secret_key, "token": creds.token,
                 "region": session.region_name, "s3": scoped.get("s3"), "endpointUrl": scoped.get("endpoint_url")}
out["_sso_sessions"] = boto3.Session()._session.full_config.get("sso_sessions")
print(json.dumps(out))
`;
    const { stdout } = await run(PYTHON, ['-c', script, ...Object.keys(EXPECTED)], { env, encoding: 'utf8' });
    const read = JSON.parse(stdout) as Record<string, Record<string, unknown>>;
    for (const [profile, want] of Object.entries(EXPECTED)) {
      expect(read[profile], profile).toMatchObject({
        accessKey: want.accessKey,
        secret: want.secret,
        token: null,
        region: want.region,
        endpointUrl: want.endpointUrl ?? null,
      });
    }
    expect(read.ozone!.s3).toEqual({ addressing_style: 'path', signature_version: 's3v4' });
    expect(read.fresh!.s3).toEqual({ signature_version: 's3v4' });
    expect(read.legacy!.s3).toEqual({ addressing_style: 'path', max_concurrent_requests: '20' });
    expect(read._sso_sessions).toEqual({
      corp: {
        sso_start_url: 'https://corp.awsapps.com/start',
        sso_region: 'us-east-1',
        sso_registration_scopes: 'sso:account:access',
      },
    });
  }, 30_000);

  it('the AWS SDK for JavaScript v3 (fromIni, loadSharedConfigFiles) reads them too', async () => {
    const files = { filepath: paths.credentials, configFilepath: paths.config, ignoreCache: true };
    const legacyLoader = await loadSharedConfigFiles(files);
    const currentLoader = await loadSharedConfigFilesCurrent(files);
    for (const [profile, want] of Object.entries(EXPECTED)) {
      const credentials = await fromIni({ profile, ...files })();
      expect(credentials, profile).toMatchObject({ accessKeyId: want.accessKey, secretAccessKey: want.secret });
      expect(credentials.sessionToken).toBeUndefined();
      expect(legacyLoader.configFile[profile]?.region, profile).toBe(want.region);
      expect(currentLoader.configFile[profile]?.region, profile).toBe(want.region);
      expect(currentLoader.configFile[profile]?.['s3.signature_version'], profile).toBe(want.signatureVersion);
      expect(currentLoader.configFile[profile]?.endpoint_url, profile).toBe(want.endpointUrl);
    }
    expect(currentLoader.configFile.ozone?.['s3.addressing_style']).toBe('path');
    expect(currentLoader.configFile['sso-user']?.sso_session).toBe('corp');
  });
});
