/**
 * `npm run demo`: the main job end to end, as a user sees it. A throwaway Kerberos realm (a real
 * MIT KDC), a local Ozone-compatible secret endpoint with real SPNEGO, a kinit, then ozs3 getsecret
 * --write-aws into a temporary HOME that already holds hand-edited AWS files, read back by the AWS CLI.
 * Nothing outside a temp directory is touched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRealm, withEnv } from '../test/support/realm.js';
import { startGateway } from '../test/support/gateway.js';

const bin = fileURLToPath(new URL('../bin/ozs3', import.meta.url));
const bold = (s: string) => (process.stdout.isTTY ? `\u001b[1m${s}\u001b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\u001b[2m${s}\u001b[0m` : s);

function section(title: string): void {
  console.log(`\n${bold(`== ${title}`)}`);
}

await using realm = await startRealm({ name: 'DEMO.OZS3' });
await realm.addPrincipal('alice', { password: 'alice-password' });
await using gateway = await startGateway(realm, { admins: [] });
const home = join(realm.dir, 'home');
const env = withEnv(realm, {
  HOME: home,
  KRB5CCNAME: `FILE:${join(realm.dir, 'alice.ccache')}`,
  KRB5_CLIENT_KTNAME: '',
  OZS3_ENDPOINT: gateway.url,
});

/** Secrets are shortened in what the demo prints (the files hold them in full). */
const secretsSeen = new Set<string>();
const mask = (text: string) =>
  [...secretsSeen].reduce((t, s) => t.split(s).join(`${s.slice(0, 6)}…(${s.length} chars)`), text);

async function run(
  display: string,
  file: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string }> {
  console.log(`${dim('$')} ${display}`);
  const r = spawnSync(file, args, { env, input: input ?? '', encoding: 'utf8' });
  for (const secret of Object.values(await gateway.secrets())) secretsSeen.add(secret);
  if (r.stdout) process.stdout.write(mask(r.stdout));
  if (r.stderr) process.stdout.write(dim(mask(r.stderr)));
  console.log(dim(`(exit ${r.status ?? r.signal})`));
  return { code: r.status ?? 1, stdout: r.stdout ?? '' };
}
const ozs3 = (args: string[]) => run(`ozs3 ${args.join(' ')}`, process.execPath, [bin, ...args]);

section(
  `A throwaway realm ${realm.name} (krb5kdc on 127.0.0.1:${realm.kdcPort}) and a local S3 Gateway secret endpoint at ${gateway.url}`,
);
console.log(dim(`export OZS3_ENDPOINT=${gateway.url}`));
await run('kinit alice', 'kinit', ['alice'], 'alice-password\n');
await run('klist', 'klist', []);

section('Get your S3 secret, exactly as `ozone s3 getsecret` prints it');
await ozs3(['getsecret']);
await ozs3(['getsecret']);

section('Rotate it and write it into ~/.aws, next to hand-edited settings that must survive');
mkdirSync(join(home, '.aws'), { recursive: true, mode: 0o700 });
writeFileSync(
  join(home, '.aws', 'config'),
  '# my AWS settings\n[default]\nregion = eu-west-1\n\n[profile work]\nregion = us-east-2\ns3 =\n    addressing_style = path\n',
);
writeFileSync(
  join(home, '.aws', 'credentials'),
  '[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = keep-me\n',
  { mode: 0o600 },
);
await ozs3([
  'getsecret',
  '--if-exists',
  'rotate',
  '--write-aws',
  '--profile',
  'ozone',
  '--s3-endpoint',
  'https://s3g.example.com:9879',
]);
await run('cat ~/.aws/config', 'cat', [join(home, '.aws', 'config')]);
await run('cat ~/.aws/credentials', 'cat', [join(home, '.aws', 'credentials')]);

const aws = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));
if (aws) {
  section('The AWS CLI reads the new profile');
  for (const key of ['aws_access_key_id', 'region', 's3.signature_version', 'endpoint_url'])
    await run(`aws configure get ${key} --profile ozone`, aws, ['configure', 'get', key, '--profile', 'ozone']);
}

section('Revoke it; the key pair leaves the profile too');
await ozs3(['revokesecret']);
await ozs3(['revokesecret', '--yes', '--write-aws', '--profile', 'ozone']);
await run('cat ~/.aws/credentials', 'cat', [join(home, '.aws', 'credentials')]);
await ozs3(['revokesecret', '--yes']);

section('Done');
const requests = await gateway.requests();
console.log(
  `The gateway verified ${requests.filter((r) => r.principal).length} SPNEGO-authenticated requests; realm and HOME were in ${realm.dir} and are removed now.`,
);
