/**
 * What users install: `npm pack` holds only what they need, and the tarball installed into an empty
 * prefix gives a working `ozs3` (the kerberos addon built there) that gets a secret.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, withEnv, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { assertBuilt } from '../support/run-cli.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = (args: string[], cwd: string) =>
  run('npm', args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });

let work: string;
let tarball: string;
let files: string[];

beforeAll(async () => {
  assertBuilt();
  work = mkdtempSync(join(tmpdir(), 'ozs3-pack-'));
  const { stdout } = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], root);
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info!.filename);
  files = info!.files.map((f) => f.path).sort();
}, 120_000);

describe('npm pack', () => {
  it('ships the built CLI, its types, README, LICENSE and CHANGELOG — no sources, tests or scripts', () => {
    expect(files).toContain('bin/ozs3');
    expect(files).toContain('dist/main.js');
    expect(files).toContain('dist/main.d.ts');
    expect(files).toContain('dist/help.json');
    for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json']) expect(files).toContain(f);
    const stray = files.filter(
      (f) => !/^(bin\/ozs3|bin\/package\.json|dist\/.+|README\.md|LICENSE|CHANGELOG\.md|package\.json)$/.test(f),
    );
    expect(stray).toEqual([]);
    expect(files.some((f) => /\.(keytab|ccache)$|(^|\/)\.?(aws\/)?credentials$/.test(f))).toBe(false);
  });

  it('declares what a package needs: bin, types, engines, files, repository, keywords, license', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({
      name: 'ozs3',
      bin: { ozs3: 'bin/ozs3' },
      types: expect.any(String),
      license: 'Apache-2.0',
    });
    expect(pkg.engines.node).toMatch(/^>=20/);
    expect(pkg.repository.url).toBeTruthy();
    expect(pkg.keywords).toEqual(expect.arrayContaining(['ozone', 'kerberos', 's3']));
  });
});

describe('installing the tarball into an empty prefix', () => {
  let realm: Realm;
  let gw: Gateway;
  let prefix: string;

  beforeAll(async () => {
    prefix = mkdtempSync(join(tmpdir(), 'ozs3-prefix-'));
    await npm(
      ['install', '--global', '--prefix', prefix, '--allow-scripts=kerberos', '--no-audit', '--no-fund', tarball],
      work,
    );
    realm = await startRealm();
    await realm.addPrincipal('alice', { password: 'pw' });
    gw = await startGateway(realm);
  }, 240_000);

  afterAll(async () => {
    await gw?.close();
    await realm?.stop();
  });

  it('gives a working ozs3 that gets a secret over SPNEGO', async () => {
    const cc = await realm.kinit('alice', { password: 'pw' });
    const bin = join(prefix, 'bin', 'ozs3');
    const env = withEnv(realm, { KRB5CCNAME: cc });
    const version = await run(bin, ['--version'], { env });
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    const { stdout } = await run(bin, ['getsecret', '--endpoint', gw.url], { env, cwd: work });
    const secrets = await gw.secrets();
    expect(stdout).toBe(`awsAccessKey=alice@${realm.name}\nawsSecret=${secrets[`alice@${realm.name}`]}\n`);
  });
});
