import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFileError } from '../../src/errors.js';
import {
  checkAwsProfileWritable,
  removeAwsKeys,
  resolveAwsPaths,
  writeAwsProfile,
  type AwsPaths,
} from '../../src/aws/write-profile.js';

const SECRET = 'ab/c+d==x;y#zSECRET';
const isRoot = process.getuid?.() === 0;

let dir: string;
let paths: AwsPaths;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ozs3-write-'));
  paths = { config: path.join(dir, 'aws', 'config'), credentials: path.join(dir, 'aws', 'credentials') };
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function modeOf(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777;
}

async function snapshot(file: string): Promise<{ text: string; mode: number; mtimeMs: number; ino: number }> {
  const stat = await fs.stat(file);
  return { text: await fs.readFile(file, 'utf8'), mode: stat.mode & 0o777, mtimeMs: stat.mtimeMs, ino: stat.ino };
}

async function writeFile(file: string, text: string, mode: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
  await fs.chmod(file, mode);
}

async function catchError(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * Bundle write-profile.ts from source for child processes (the build's dist/ is one esbuild bundle
 * without per-module files), readable by any user.
 */
async function bundleWriter(outDir: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = path.join(outDir, 'write-profile.mjs');
  const entry = fileURLToPath(new URL('../../src/aws/write-profile.ts', import.meta.url));
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
  });
  await fs.chmod(outDir, 0o755);
  await fs.chmod(outfile, 0o644);
  return outfile;
}

/** Run writeAwsProfile as uid 65534 and return the error it threw, as plain data. */
async function runWriterAsNobody(target: AwsPaths): Promise<unknown> {
  const outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ozs3-bundle-'));
  try {
    const module = await bundleWriter(outDir);
    const script = `
      const { writeAwsProfile } = await import(${JSON.stringify(module)});
      try {
        await writeAwsProfile({ profile: 'ozone', accessKey: 'AK1', secret: 'S', paths: ${JSON.stringify(target)} });
        console.log('null');
      } catch (e) {
        console.log(JSON.stringify({ exitCode: e.exitCode, code: e.code, message: e.message }));
      }`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    });
    if (child.status !== 0) throw new Error(`writer as nobody failed: ${child.stderr}`);
    return JSON.parse(child.stdout);
  } finally {
    await fs.rm(outDir, { recursive: true, force: true });
  }
}

function write(extra: Partial<Parameters<typeof writeAwsProfile>[0]> = {}) {
  return writeAwsProfile({ profile: 'ozone', accessKey: 'AK1', secret: SECRET, paths, ...extra });
}

describe('resolveAwsPaths', () => {
  it('defaults to ~/.aws/config and ~/.aws/credentials', () => {
    expect(resolveAwsPaths({}, '/home/u')).toEqual({
      config: '/home/u/.aws/config',
      credentials: '/home/u/.aws/credentials',
    });
  });

  it('honours AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE and expands a leading ~/', () => {
    const env = { AWS_CONFIG_FILE: '~/cfg/config', AWS_SHARED_CREDENTIALS_FILE: '/etc/x/creds' };
    expect(resolveAwsPaths(env, '/home/u')).toEqual({ config: '/home/u/cfg/config', credentials: '/etc/x/creds' });
  });

  it('ignores empty overrides', () => {
    const env = { AWS_CONFIG_FILE: '', AWS_SHARED_CREDENTIALS_FILE: undefined };
    expect(resolveAwsPaths(env, '/h')).toEqual({ config: '/h/.aws/config', credentials: '/h/.aws/credentials' });
  });
});

describe('writeAwsProfile', () => {
  it('vector 1: creates both files 0600 and their parent directories 0700', async () => {
    paths = { config: path.join(dir, 'a', 'b', 'config'), credentials: path.join(dir, 'c', 'd', 'credentials') };
    const result = await write({ s3Endpoint: 'https://s3g.example.com:9879' });
    expect(result).toEqual({ paths, notices: [] });
    expect(await fs.readFile(paths.credentials, 'utf8')).toBe(
      `[ozone]\naws_access_key_id = AK1\naws_secret_access_key = ${SECRET}\n`,
    );
    expect(await fs.readFile(paths.config, 'utf8')).toBe(
      '[profile ozone]\nregion = us-west-1\nendpoint_url = https://s3g.example.com:9879\ns3 =\n    signature_version = s3v4\n',
    );
    expect(await modeOf(paths.credentials)).toBe(0o600);
    expect(await modeOf(paths.config)).toBe(0o600);
    for (const created of ['a', 'a/b', 'c', 'c/d']) expect(await modeOf(path.join(dir, created))).toBe(0o700);
  });

  it('tightens a 0644 credentials file to 0600 and says so without the secret', async () => {
    await writeFile(paths.credentials, '[other]\naws_access_key_id = X\n', 0o644);
    const { notices } = await write();
    expect(await modeOf(paths.credentials)).toBe(0o600);
    expect(notices).toEqual([`tightened permissions of ${paths.credentials} from 0644 to 0600`]);
    expect(notices.join()).not.toContain(SECRET);
  });

  it('keeps a 0640 config file at 0640', async () => {
    await writeFile(paths.config, '[default]\nregion = eu-1\n', 0o640);
    const { notices } = await write();
    expect(await modeOf(paths.config)).toBe(0o640);
    expect(notices).toEqual([]);
  });

  it('replaces the file by rename, never rewriting it in place', async () => {
    await writeFile(paths.config, '[default]\nregion = eu-1\n', 0o600);
    const before = await snapshot(paths.config);
    await write();
    expect((await snapshot(paths.config)).ino).not.toBe(before.ino);
  });

  it('overrides the region when one is given and keeps an existing one otherwise', async () => {
    await writeFile(paths.config, '[profile ozone]\nregion = eu-1\n', 0o600);
    await write();
    expect(await fs.readFile(paths.config, 'utf8')).toBe(
      '[profile ozone]\nregion = eu-1\ns3 =\n    signature_version = s3v4\n',
    );
    await write({ region: 'us-east-2' });
    expect(await fs.readFile(paths.config, 'utf8')).toBe(
      '[profile ozone]\nregion = us-east-2\ns3 =\n    signature_version = s3v4\n',
    );
  });

  it('writes [default] for the default profile in both files', async () => {
    await write({ profile: 'default', region: 'r' });
    expect(await fs.readFile(paths.config, 'utf8')).toBe('[default]\nregion = r\ns3 =\n    signature_version = s3v4\n');
    expect(await fs.readFile(paths.credentials, 'utf8')).toMatch(/^\[default\]\n/);
  });

  it('drops a stale session token and keeps CRLF line endings', async () => {
    await writeFile(paths.credentials, '[ozone]\r\naws_access_key_id = OLD\r\naws_session_token = TOKEN\r\n', 0o600);
    await write();
    expect(await fs.readFile(paths.credentials, 'utf8')).toBe(
      `[ozone]\r\naws_access_key_id = AK1\r\naws_secret_access_key = ${SECRET}\r\n`,
    );
  });

  it('vector 23: updates the target of a symlinked credentials file and keeps the link', async () => {
    const target = path.join(dir, 'real', 'creds');
    await writeFile(target, '[other]\naws_access_key_id = X\n', 0o640);
    await fs.mkdir(path.dirname(paths.credentials), { recursive: true });
    await fs.symlink('../real/creds', paths.credentials);
    const { notices } = await write();
    expect((await fs.lstat(paths.credentials)).isSymbolicLink()).toBe(true);
    expect(await fs.readlink(paths.credentials)).toBe('../real/creds');
    expect(await fs.readFile(target, 'utf8')).toContain('[ozone]\naws_access_key_id = AK1\n');
    // Credentials end 0600 even through a link; the notice names the real file.
    expect(await modeOf(target)).toBe(0o600);
    expect(notices).toEqual([`tightened permissions of ${target} from 0640 to 0600`]);
  });

  it('vector 23: a symlinked config target keeps its 0640 mode', async () => {
    const target = path.join(dir, 'dotfiles', 'aws-config');
    await writeFile(target, '# mine\n', 0o640);
    await fs.mkdir(path.dirname(paths.config), { recursive: true });
    await fs.symlink(target, paths.config);
    await write();
    expect((await fs.lstat(paths.config)).isSymbolicLink()).toBe(true);
    expect(await fs.readFile(target, 'utf8')).toMatch(/^# mine\n\[profile ozone\]\n/);
    expect(await modeOf(target)).toBe(0o640);
  });

  it('vector 23: a dangling credentials link gets its target created 0600 in a new 0700 directory', async () => {
    const target = path.join(dir, 'vault', 'creds');
    await fs.mkdir(path.dirname(paths.credentials), { recursive: true });
    await fs.symlink(target, paths.credentials);
    await write();
    expect((await fs.lstat(paths.credentials)).isSymbolicLink()).toBe(true);
    expect(await modeOf(target)).toBe(0o600);
    expect(await modeOf(path.dirname(target))).toBe(0o700);
    expect(await fs.readFile(paths.credentials, 'utf8')).toMatch(/^\[ozone\]\n/);
  });

  it('leaves both files untouched and exits 9 when the config is ambiguous', async () => {
    await writeFile(paths.credentials, '[ozone]\naws_access_key_id = OLD\n', 0o644);
    await writeFile(paths.config, '[profile ozone]\nregion = a\n[profile "ozone"]\n', 0o640);
    const credentialsBefore = await snapshot(paths.credentials);
    const configBefore = await snapshot(paths.config);
    const error = await catchError(write());
    expect(error).toBeInstanceOf(LocalFileError);
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_FILE_AMBIGUOUS' });
    expect((error as Error).message).toBe(
      `${paths.config}:3: profile "ozone" is defined by more than one section (line 1 [profile ozone] and line 3 [profile "ozone"])`,
    );
    expect(await snapshot(paths.credentials)).toEqual(credentialsBefore);
    expect(await snapshot(paths.config)).toEqual(configBefore);
    expect((await fs.readdir(path.dirname(paths.config))).sort()).toEqual(['config', 'credentials']);
  });

  it('refuses a scalar "s3 = foo" with exit 9 and the line number', async () => {
    await writeFile(paths.config, '[profile ozone]\ns3 = foo\n', 0o600);
    const error = await catchError(write());
    expect(error).toMatchObject({
      exitCode: 9,
      message: `${paths.config}:2: "s3" has a plain value where a block of settings is needed`,
    });
    await expect(fs.stat(paths.credentials)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('vector 24: refuses a secret with a line break before touching anything', async () => {
    const error = await catchError(write({ secret: 'abc\n[evil]' }));
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_INVALID_VALUE' });
    expect((error as Error).message).not.toContain('evil');
    await expect(fs.stat(path.join(dir, 'aws'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports a credentials path that is a directory as unreadable, exit 9', async () => {
    await fs.mkdir(paths.credentials, { recursive: true });
    const error = await catchError(write());
    expect(error).toMatchObject({
      exitCode: 9,
      code: 'AWS_FILE_UNREADABLE',
      message: `cannot read ${paths.credentials}: it is a directory`,
    });
  });

  it('reports a parent that is a file as unwritable, exit 9', async () => {
    await writeFile(path.join(dir, 'aws'), 'not a directory', 0o600);
    const error = await catchError(write());
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_FILE_UNWRITABLE' });
    expect((error as Error).message).toMatch(
      new RegExp(`^cannot write ${dir}/aws/\\w+: a parent path is not a directory$`),
    );
  });

  it('reports a directory it may not write to as permission denied, exit 9', async () => {
    await fs.mkdir(path.dirname(paths.config), { recursive: true, mode: 0o755 });
    await fs.chmod(dir, 0o755);
    await fs.chmod(path.dirname(paths.config), 0o555);
    // Root ignores permissions, so as root the writer runs as user nobody.
    const error = isRoot ? await runWriterAsNobody(paths) : await catchError(write());
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_FILE_UNWRITABLE' });
    // Locks are taken in path order, so the config file is the first one refused.
    expect((error as Error).message).toBe(`cannot write ${paths.config}: permission denied`);
    await fs.chmod(path.dirname(paths.config), 0o700);
  });

  it('refuses a file that is not valid UTF-8 and leaves it untouched', async () => {
    await fs.mkdir(path.dirname(paths.config), { recursive: true });
    await fs.writeFile(paths.config, Buffer.from([0x5b, 0x61, 0x5d, 0x0a, 0xff, 0xfe, 0x0a]));
    const error = await catchError(write());
    expect(error).toMatchObject({
      exitCode: 9,
      code: 'AWS_FILE_UNREADABLE',
      message: `cannot read ${paths.config}: it is not valid UTF-8 text`,
    });
    expect(await fs.readFile(paths.config)).toEqual(Buffer.from([0x5b, 0x61, 0x5d, 0x0a, 0xff, 0xfe, 0x0a]));
  });

  it('refuses config and credentials that are the same file', async () => {
    const error = await catchError(write({ paths: { config: paths.config, credentials: paths.config } }));
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_FILE_AMBIGUOUS' });
  });

  it('leaves no lock or temp files behind', async () => {
    await write();
    await write({ profile: 'second' });
    expect((await fs.readdir(path.dirname(paths.config))).sort()).toEqual(['config', 'credentials']);
  });

  it('does not rewrite files whose content and mode are already right', async () => {
    await write();
    const before = [await snapshot(paths.config), await snapshot(paths.credentials)];
    await write();
    expect([await snapshot(paths.config), await snapshot(paths.credentials)]).toEqual(before);
  });
});

describe('locking', () => {
  it('waits for a lock held by a live process and writes once it is released', async () => {
    await fs.mkdir(path.dirname(paths.credentials), { recursive: true });
    const lock = `${paths.credentials}.lock`;
    await fs.writeFile(lock, `${process.pid} ${os.hostname()} test\n`);
    const released = new Promise((resolve) => setTimeout(resolve, 400)).then(() => fs.rm(lock));
    const started = Date.now();
    await write();
    await released;
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(await fs.readFile(paths.credentials, 'utf8')).toMatch(/^\[ozone\]\n/);
  });

  it('takes over a lock whose process is gone', async () => {
    await fs.mkdir(path.dirname(paths.credentials), { recursive: true });
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout;
    await fs.writeFile(`${paths.credentials}.lock`, `${gone} ${os.hostname()} test\n`);
    const started = Date.now();
    await write();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await fs.readdir(path.dirname(paths.config))).sort()).toEqual(['config', 'credentials']);
  });

  it('takes over an empty lock file left by a writer killed right after creating it', async () => {
    await fs.mkdir(path.dirname(paths.config), { recursive: true });
    const lock = `${paths.config}.lock`;
    await fs.writeFile(lock, '');
    const old = new Date(Date.now() - 5_000);
    await fs.utimes(lock, old, old);
    await write();
    await expect(fs.stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes over a lock older than 30 seconds from another host', async () => {
    await fs.mkdir(path.dirname(paths.config), { recursive: true });
    const lock = `${paths.config}.lock`;
    await fs.writeFile(lock, '1 some-other-host abc\n');
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(lock, old, old);
    await write();
    await expect(fs.stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('removes temp files a killed writer left behind, which may hold a secret', async () => {
    await fs.mkdir(path.dirname(paths.credentials), { recursive: true });
    const orphan = path.join(path.dirname(paths.credentials), '.credentials.0123456789ab.ozs3-tmp');
    await fs.writeFile(orphan, 'half a secret', { mode: 0o600 });
    await write();
    await expect(fs.stat(orphan)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('removeAwsKeys', () => {
  const credentials =
    '# keep\n[ozone]\naws_access_key_id = AK1\naws_secret_access_key = SK1\naws_session_token = T\n[other]\naws_access_key_id = AK1\n';

  it('removes the key pair and token when the profile holds that access key, keeping the header', async () => {
    await writeFile(paths.credentials, credentials, 0o600);
    const result = await removeAwsKeys({ profile: 'ozone', accessKey: 'AK1', paths });
    expect(result).toEqual({ removed: true, notices: [] });
    expect(await fs.readFile(paths.credentials, 'utf8')).toBe('# keep\n[ozone]\n[other]\naws_access_key_id = AK1\n');
  });

  it('leaves the file byte-identical when the profile holds another key', async () => {
    await writeFile(paths.credentials, credentials, 0o644);
    const before = await snapshot(paths.credentials);
    expect(await removeAwsKeys({ profile: 'ozone', accessKey: 'AK2', paths })).toEqual({ removed: false, notices: [] });
    expect(await snapshot(paths.credentials)).toEqual(before);
  });

  it('does nothing when the profile or the file does not exist', async () => {
    expect(await removeAwsKeys({ profile: 'ozone', accessKey: 'AK1', paths })).toEqual({ removed: false, notices: [] });
    await expect(fs.stat(path.dirname(paths.credentials))).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFile(paths.credentials, credentials, 0o600);
    expect(await removeAwsKeys({ profile: 'nobody', accessKey: 'AK1', paths })).toEqual({
      removed: false,
      notices: [],
    });
  });

  it('tightens a loose credentials file it rewrites', async () => {
    await writeFile(paths.credentials, credentials, 0o664);
    const result = await removeAwsKeys({ profile: 'ozone', accessKey: 'AK1', paths });
    expect(result.notices).toEqual([`tightened permissions of ${paths.credentials} from 0664 to 0600`]);
    expect(await modeOf(paths.credentials)).toBe(0o600);
  });
});

describe('checkAwsProfileWritable', () => {
  it('passes for files that do not exist yet and creates nothing', async () => {
    await checkAwsProfileWritable({ profile: 'ozone', region: undefined, s3Endpoint: undefined, paths });
    await expect(fs.stat(path.join(dir, 'aws'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses an ambiguous config before any secret exists', async () => {
    await writeFile(paths.config, '[default]\n[profile default]\n', 0o600);
    const error = await catchError(checkAwsProfileWritable({ profile: 'default', paths }));
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_FILE_AMBIGUOUS' });
  });

  it('refuses an invalid profile name', async () => {
    const error = await catchError(checkAwsProfileWritable({ profile: 'bad name', paths }));
    expect(error).toMatchObject({ exitCode: 9, code: 'AWS_INVALID_VALUE' });
  });
});
