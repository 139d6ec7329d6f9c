import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

// Child processes run write-profile.ts bundled from source with esbuild: dist/ holds one bundle for
// the CLI, not per-module files, and a bundle made here cannot be stale.
const ENTRY = fileURLToPath(new URL('../../src/aws/write-profile.ts', import.meta.url));

const CONFIG_SEED =
  '# my settings\n[default]\nregion = eu-west-1\ns3 =\n    addressing_style = path\n\n[sso-session corp]\nsso_region = eu-west-1\n';
const CREDENTIALS_SEED = '# keys\n[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = DEFAULTSECRET\n';

let workDir: string;
let writerScript: string;
let dir: string;
let paths: { config: string; credentials: string };

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ozs3-concurrency-'));
  const { build } = await import('esbuild');
  const bundle = path.join(workDir, 'write-profile.mjs');
  await build({
    entryPoints: [ENTRY],
    outfile: bundle,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
  });
  writerScript = path.join(workDir, 'writer.mjs');
  // argv: config credentials profile loops. Every iteration writes a matching key/secret/region trio.
  await fs.writeFile(
    writerScript,
    `import { writeAwsProfile } from ${JSON.stringify(bundle)};
const [config, credentials, profile, loops] = process.argv.slice(2);
for (let i = 0; i < Number(loops); i++) {
  await writeAwsProfile({ profile, accessKey: 'AK' + i, secret: 'SK/' + i + '+x', region: 'r-' + i, paths: { config, credentials } });
  if (i === 0) process.stdout.write('ready\\n');
}
`,
  );
});

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(workDir, 'aws-'));
  paths = { config: path.join(dir, 'config'), credentials: path.join(dir, 'credentials') };
  await fs.writeFile(paths.config, CONFIG_SEED, { mode: 0o644 });
  await fs.writeFile(paths.credentials, CREDENTIALS_SEED, { mode: 0o600 });
});

function startWriter(profile: string, loops: number): ChildProcess {
  return spawn(process.execPath, [writerScript, paths.config, paths.credentials, profile, String(loops)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function waitForExit(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.stdout?.on('data', () => resolve());
    child.on('exit', () => resolve());
  });
}

type Sections = Map<string, Map<string, string>>;

/** A strict reader: any line that is not a header, comment, blank, `key = value` or block child fails. */
function parseStrict(text: string): Sections {
  const sections: Sections = new Map();
  let current: Map<string, string> | undefined;
  let block: string | undefined;
  for (const line of text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined)) {
    if (line.trim() === '' || /^\s*[#;]/.test(line)) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      if (sections.has(header[1]!)) throw new Error(`duplicate section ${header[1]}`);
      current = new Map();
      sections.set(header[1]!, current);
      block = undefined;
      continue;
    }
    const child = /^\s+([a-z_]+) = (\S+)$/.exec(line);
    if (child && block !== undefined && current) {
      current.set(`${block}.${child[1]}`, child[2]!);
      continue;
    }
    const pair = /^([a-z_0-9]+) =(?: (\S+))?$/.exec(line);
    if (!pair || !current) throw new Error(`unexpected line ${JSON.stringify(line)}`);
    if (current.has(pair[1]!)) throw new Error(`duplicate key ${pair[1]}`);
    current.set(pair[1]!, pair[2] ?? '');
    block = pair[2] === undefined ? pair[1] : undefined;
  }
  return sections;
}

/** Both files are whole: seeds intact, and every profile holds one consistent write. */
function checkFiles(config: string, credentials: string): void {
  expect(config.startsWith(CONFIG_SEED)).toBe(true);
  expect(credentials.startsWith(CREDENTIALS_SEED)).toBe(true);
  const configSections = parseStrict(config);
  for (const [name, keys] of parseStrict(credentials)) {
    if (name === 'default') continue;
    const iteration = /^AK(\d+)$/.exec(keys.get('aws_access_key_id') ?? '')?.[1];
    expect(iteration, `profile ${name} has a key`).toBeDefined();
    expect(keys.get('aws_secret_access_key')).toBe(`SK/${iteration}+x`);
    // A writer killed between its two renames leaves credentials ahead of config; what is there is whole.
    const profile = configSections.get(`profile ${name}`);
    if (profile === undefined) continue;
    expect(profile.get('region')).toMatch(/^r-\d+$/);
    expect(profile.get('s3.signature_version')).toBe('s3v4');
  }
  for (const [name, keys] of configSections) {
    if (name.startsWith('profile ')) expect(keys.get('s3.signature_version'), name).toBe('s3v4');
  }
}

async function readBoth(): Promise<[string, string]> {
  return [await fs.readFile(paths.config, 'utf8'), await fs.readFile(paths.credentials, 'utf8')];
}

async function listLeftovers(): Promise<string[]> {
  return (await fs.readdir(dir)).filter((name) => name !== 'config' && name !== 'credentials');
}

describe('concurrent writers', () => {
  it('eight processes writing different profiles at once all survive', async () => {
    const profiles = Array.from({ length: 8 }, (_, i) => `p${i}`);
    const results = await Promise.all(profiles.map((profile) => waitForExit(startWriter(profile, 5))));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });

    const [config, credentials] = await readBoth();
    checkFiles(config, credentials);
    const credentialSections = parseStrict(credentials);
    const configSections = parseStrict(config);
    for (const profile of profiles) {
      expect(credentialSections.get(profile)?.get('aws_access_key_id')).toBe('AK4');
      expect(configSections.get(`profile ${profile}`)?.get('region')).toBe('r-4');
    }
    expect(configSections.get('default')?.get('s3.addressing_style')).toBe('path');
    expect((await fs.stat(paths.credentials)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(paths.config)).mode & 0o777).toBe(0o644);
    expect(await listLeftovers()).toEqual([]);
  });

  it('writers killed at random moments never leave a partial file or a lock that blocks the next writer', async () => {
    const deadline = Date.now() + 7_000;
    let reads = 0;
    let kills = 0;
    let stop = false;
    // Read both files continuously while writers run and die: every snapshot must be whole.
    const watcher = (async () => {
      while (!stop) {
        const [config, credentials] = await readBoth();
        checkFiles(config, credentials);
        reads++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    for (let round = 0; Date.now() < deadline || round < 5; round++) {
      const writers = [0, 1, 2].map((i) => startWriter(`crash${i}`, 100_000));
      const exits = writers.map(waitForExit);
      await Promise.all(
        writers.map(async (writer) => {
          // Mostly mid-loop, sometimes during start-up or the very first write.
          if (Math.random() < 0.75) await waitForReady(writer);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 40));
          writer.kill('SIGKILL');
        }),
      );
      for (const exit of await Promise.all(exits)) {
        if (exit.signal === 'SIGKILL') kills++;
        else expect(exit, exit.stderr).toMatchObject({ code: 0 });
      }
      const [config, credentials] = await readBoth();
      checkFiles(config, credentials);
    }
    stop = true;
    await watcher;

    // A lock or temp file left by a killed writer must not stop (or outlive) the next writer.
    const started = Date.now();
    const next = await waitForExit(startWriter('after', 1));
    expect(next, next.stderr).toMatchObject({ code: 0 });
    expect(Date.now() - started).toBeLessThan(3_000);
    const [config, credentials] = await readBoth();
    checkFiles(config, credentials);
    expect(parseStrict(credentials).get('after')?.get('aws_access_key_id')).toBe('AK0');
    expect(await listLeftovers()).toEqual([]);
    expect((await fs.stat(paths.credentials)).mode & 0o777).toBe(0o600);
    expect(kills).toBeGreaterThan(10);
    expect(reads).toBeGreaterThan(50);
  }, 20_000);
});
