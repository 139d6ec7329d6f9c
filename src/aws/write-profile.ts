/**
 * The safe file layer around the profile editor: lock, read, edit in memory, write a temp file,
 * fsync, rename over the target (docs/aws-files.md, "Writing safely").
 */

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalFileError } from '../errors.js';
import { checkProfileEdit, editProfile, readProfile, type AwsFileKind, type ProfileEdit } from './profile-file.js';

export interface AwsPaths {
  config: string;
  credentials: string;
}

export interface WriteAwsProfileOptions {
  profile: string;
  accessKey: string;
  secret: string;
  /** Overrides the profile's region; without it `us-west-1` is written only if the profile has none. */
  region?: string | undefined;
  /** Written as the profile-level `endpoint_url`. */
  s3Endpoint?: string | undefined;
  paths: AwsPaths;
}

export interface WriteAwsProfileResult {
  paths: AwsPaths;
  /** Messages for stderr. Never contain a secret. */
  notices: string[];
}

export type CheckAwsProfileOptions = Omit<WriteAwsProfileOptions, 'accessKey' | 'secret'>;

export interface RemoveAwsKeysOptions {
  profile: string;
  accessKey: string;
  paths: AwsPaths;
}

const DEFAULT_REGION = 'us-west-1';
const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;
/** A lock file still empty after this long lost its writer between create and write. */
const EMPTY_LOCK_STALE_MS = 2_000;
const TEMP_SUFFIX = '.ozs3-tmp';

interface LoadedFile {
  kind: AwsFileKind;
  path: string;
  text: string;
  /** Undefined when the file does not exist yet. */
  stat: Stats | undefined;
}

interface FileLock {
  path: string;
  token: string;
}

export function resolveAwsPaths(
  env: NodeJS.ProcessEnv | Record<string, string | undefined>,
  homedir: string,
): AwsPaths {
  const expandHome = (file: string): string => {
    if (file === '~') return homedir;
    return file.startsWith('~/') ? path.join(homedir, file.slice(2)) : file;
  };
  const pick = (name: string, fallback: string): string => {
    const value = env[name];
    return value ? expandHome(value) : path.join(homedir, '.aws', fallback);
  };
  return {
    config: pick('AWS_CONFIG_FILE', 'config'),
    credentials: pick('AWS_SHARED_CREDENTIALS_FILE', 'credentials'),
  };
}

/** Write the key pair into credentials and region, endpoint and `s3` block into config. */
export async function writeAwsProfile(opts: WriteAwsProfileOptions): Promise<WriteAwsProfileResult> {
  const credentialsEdit = buildCredentialsEdit(opts.accessKey, opts.secret);
  checkProfileEdit('credentials', opts.profile, credentialsEdit);
  checkProfileEdit('config', opts.profile, buildConfigEdit(opts, undefined));
  const targets = await resolveTargets(opts.paths);
  return withLocks([targets.credentials, targets.config], async () => {
    const credentials = await readAwsFile('credentials', targets.credentials);
    const config = await readAwsFile('config', targets.config);
    // Both edits are computed before either file is written, so a refusal leaves the pair untouched.
    const newCredentials = editProfile(credentials.text, 'credentials', opts.profile, credentialsEdit, {
      source: credentials.path,
    });
    const newConfig = computeConfigText(config, opts);
    const notices: string[] = [];
    await saveAwsFile(credentials, newCredentials, notices);
    await saveAwsFile(config, newConfig, notices);
    return { paths: opts.paths, notices };
  });
}

/**
 * Everything `writeAwsProfile` checks, without writing: names, values, whether both files can be
 * read and edited unambiguously, and whether their directories are writable. Run it before asking
 * for a secret that the server shows only once.
 */
export async function checkAwsProfileWritable(opts: CheckAwsProfileOptions): Promise<void> {
  const credentialsEdit = buildCredentialsEdit('AKIAPLACEHOLDER', 'placeholder');
  checkProfileEdit('credentials', opts.profile, credentialsEdit);
  checkProfileEdit('config', opts.profile, buildConfigEdit(opts, undefined));
  const targets = await resolveTargets(opts.paths);
  const credentials = await readAwsFile('credentials', targets.credentials);
  const config = await readAwsFile('config', targets.config);
  editProfile(credentials.text, 'credentials', opts.profile, credentialsEdit, { source: credentials.path });
  computeConfigText(config, opts);
  await checkDirectoryWritable(credentials.path);
  await checkDirectoryWritable(config.path);
}

/**
 * Before a revoke with --write-aws: the access key id the profile holds, checked the way
 * `removeAwsKeys` will need it (the file exists and reads unambiguously, the profile holds a key,
 * the directory is writable). Throws LocalFileError (exit 9) otherwise, so nothing is revoked that
 * the profile could not then be cleaned of.
 */
export async function inspectAwsKeys(opts: Omit<RemoveAwsKeysOptions, 'accessKey'>): Promise<string> {
  const edit: ProfileEdit = { remove: ['aws_access_key_id', 'aws_secret_access_key', 'aws_session_token'] };
  checkProfileEdit('credentials', opts.profile, edit);
  const target = await resolveTarget(opts.paths.credentials);
  const credentials = await readAwsFile('credentials', target);
  if (credentials.stat === undefined) {
    throw new LocalFileError(
      'AWS_PROFILE_MISSING',
      `${opts.paths.credentials} does not exist: profile '${opts.profile}' holds no key to remove`,
      {
        hint: 'check --profile and AWS_SHARED_CREDENTIALS_FILE, or leave out --write-aws',
      },
    );
  }
  const current = readProfile(credentials.text, 'credentials', opts.profile, { source: credentials.path });
  if (current === undefined) {
    throw new LocalFileError(
      'AWS_PROFILE_MISSING',
      `there is no profile '${opts.profile}' in ${opts.paths.credentials}`,
      {
        hint: 'check --profile, or leave out --write-aws',
      },
    );
  }
  const key = current.aws_access_key_id;
  if (!key) {
    throw new LocalFileError(
      'AWS_PROFILE_NO_KEY',
      `profile '${opts.profile}' in ${opts.paths.credentials} holds no aws_access_key_id`,
      {
        hint: 'check --profile, or leave out --write-aws',
      },
    );
  }
  editProfile(credentials.text, 'credentials', opts.profile, edit, { source: credentials.path });
  await checkDirectoryWritable(credentials.path);
  return key;
}

/**
 * Remove the key pair (and any session token) from credentials `[profile]`, only when that profile
 * holds `accessKey`. The section header stays.
 */
export async function removeAwsKeys(opts: RemoveAwsKeysOptions): Promise<{ removed: boolean; notices: string[] }> {
  const edit: ProfileEdit = { remove: ['aws_access_key_id', 'aws_secret_access_key', 'aws_session_token'] };
  checkProfileEdit('credentials', opts.profile, edit);
  const target = await resolveTarget(opts.paths.credentials);
  // Nothing to remove, and no reason to create ~/.aws just to lock it.
  if ((await readAwsFile('credentials', target)).stat === undefined) return { removed: false, notices: [] };
  return withLocks([target], async () => {
    const credentials = await readAwsFile('credentials', target);
    const current = readProfile(credentials.text, 'credentials', opts.profile, { source: credentials.path });
    if (current?.aws_access_key_id !== opts.accessKey) return { removed: false, notices: [] };
    const notices: string[] = [];
    const text = editProfile(credentials.text, 'credentials', opts.profile, edit, { source: credentials.path });
    await saveAwsFile(credentials, text, notices);
    return { removed: true, notices };
  });
}

function buildCredentialsEdit(accessKey: string, secret: string): ProfileEdit {
  // A session token left from earlier STS credentials would be sent with the new key and break it.
  return {
    set: { aws_access_key_id: accessKey, aws_secret_access_key: secret },
    remove: ['aws_session_token'],
  };
}

function buildConfigEdit(opts: CheckAwsProfileOptions, current: Record<string, string> | undefined): ProfileEdit {
  const set: Record<string, string> = {};
  if (opts.region !== undefined) set.region = opts.region;
  else if (current?.region === undefined) set.region = DEFAULT_REGION;
  if (opts.s3Endpoint !== undefined) set.endpoint_url = opts.s3Endpoint;
  return { set, nested: { s3: { signature_version: 's3v4' } } };
}

function computeConfigText(config: LoadedFile, opts: CheckAwsProfileOptions): string {
  const source = { source: config.path };
  const current = readProfile(config.text, 'config', opts.profile, source);
  return editProfile(config.text, 'config', opts.profile, buildConfigEdit(opts, current), source);
}

async function resolveTargets(paths: AwsPaths): Promise<AwsPaths> {
  const credentials = await resolveTarget(paths.credentials);
  const config = await resolveTarget(paths.config);
  if (credentials === config) {
    const message = `the AWS config and credentials files are the same file: ${config}`;
    throw new LocalFileError('AWS_FILE_AMBIGUOUS', message, {
      hint: 'Point AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at different files',
    });
  }
  return { credentials, config };
}

/** Follow symlinks by hand so a dangling link yields the path its target should be created at. */
async function resolveTarget(file: string): Promise<string> {
  let current = path.resolve(file);
  for (let hops = 0; hops < 40; hops++) {
    let stat: Stats;
    try {
      stat = await fs.lstat(current);
    } catch (error) {
      // Missing (or under a non-directory): creating the parent directory reports the real problem.
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return current;
      throw toLocalFileError(error, 'read', current);
    }
    if (!stat.isSymbolicLink()) return current;
    try {
      current = path.resolve(path.dirname(current), await fs.readlink(current));
    } catch (error) {
      throw toLocalFileError(error, 'read', current);
    }
  }
  throw new LocalFileError('AWS_FILE_UNREADABLE', `cannot read ${file}: too many levels of symbolic links`);
}

async function readAwsFile(kind: AwsFileKind, file: string): Promise<LoadedFile> {
  let stat: Stats;
  try {
    stat = await fs.stat(file);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { kind, path: file, text: '', stat: undefined };
    throw toLocalFileError(error, 'read', file);
  }
  // Opening a FIFO or device would block or read garbage.
  if (!stat.isFile()) {
    const what = stat.isDirectory() ? 'it is a directory' : 'it is not a regular file';
    throw new LocalFileError('AWS_FILE_UNREADABLE', `cannot read ${file}: ${what}`, {
      hint: `Move it away or point ${kind === 'config' ? 'AWS_CONFIG_FILE' : 'AWS_SHARED_CREDENTIALS_FILE'} elsewhere`,
    });
  }
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    throw toLocalFileError(error, 'read', file);
  }
  try {
    // fatal + ignoreBOM: every byte must survive the round trip, or the file is not ours to rewrite.
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    return { kind, path: file, text, stat };
  } catch (error) {
    throw new LocalFileError('AWS_FILE_UNREADABLE', `cannot read ${file}: it is not valid UTF-8 text`, {
      cause: error,
      hint: 'Fix the file encoding; ozs3 left it untouched',
    });
  }
}

async function saveAwsFile(file: LoadedFile, text: string, notices: string[]): Promise<void> {
  const oldMode = file.stat === undefined ? undefined : file.stat.mode & 0o777;
  // Credentials hold secrets: always 0600. Config keeps the mode its owner chose.
  const mode = file.kind === 'credentials' ? 0o600 : (oldMode ?? 0o600);
  if (text === file.text && oldMode === mode) return;
  await replaceFile(file.path, text, mode, file.stat);
  if (file.kind === 'credentials' && oldMode !== undefined && (oldMode & 0o077) !== 0) {
    notices.push(`tightened permissions of ${file.path} from ${formatMode(oldMode)} to ${formatMode(mode)}`);
  }
}

async function replaceFile(target: string, text: string, mode: number, previous: Stats | undefined): Promise<void> {
  const directory = path.dirname(target);
  const temp = path.join(directory, `.${path.basename(target)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx', 0o600);
    await handle.writeFile(text, 'utf8');
    // Created 0600, so a file system that refuses chmod can only leave the file stricter than asked.
    await handle.chmod(mode).catch(() => undefined);
    if (previous !== undefined && previous.uid !== process.getuid?.()) {
      // Only root can give the file back to its owner; anyone else keeps their own ownership.
      await handle.chown(previous.uid, previous.gid).catch(() => undefined);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, target);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw toLocalFileError(error, 'write', target);
  }
  await syncDirectory(directory);
}

/** Make the rename durable. Best effort: some file systems refuse fsync on directories. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(directory, 'r');
    await handle.sync();
  } catch {
    // The rename already happened; durability across power loss is all that is lost.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

async function checkDirectoryWritable(target: string): Promise<void> {
  let directory = path.dirname(target);
  for (;;) {
    try {
      await fs.access(directory, fsConstants.W_OK | fsConstants.X_OK);
      return;
    } catch (error) {
      const parent = path.dirname(directory);
      if (errorCode(error) !== 'ENOENT' || parent === directory) throw toLocalFileError(error, 'write', target);
      directory = parent;
    }
  }
}

/** Lock every target (sorted, so two processes never wait on each other), run `action`, unlock. */
async function withLocks<T>(targets: string[], action: () => Promise<T>): Promise<T> {
  const locks: FileLock[] = [];
  try {
    for (const target of [...targets].sort()) {
      await createParentDirectory(target);
      locks.push(await acquireLock(target));
      await removeOrphanTempFiles(target);
    }
    return await action();
  } finally {
    for (const lock of locks.reverse()) await releaseLock(lock);
  }
}

async function createParentDirectory(target: string): Promise<void> {
  try {
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw toLocalFileError(error, 'write', target);
    // mkdir -p says EEXIST when the parent itself exists as a file.
    const message = `cannot write ${target}: ${ERRNO_CAUSES.ENOTDIR}`;
    throw new LocalFileError('AWS_FILE_UNWRITABLE', message, { cause: error });
  }
}

async function acquireLock(target: string): Promise<FileLock> {
  const lockPath = `${target}.lock`;
  const token = `${process.pid} ${hostname()} ${randomBytes(8).toString('hex')}\n`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 10;
  for (;;) {
    if (await tryCreateLock(lockPath, token, target)) return { path: lockPath, token };
    if (await breakStaleLock(lockPath)) continue;
    if (Date.now() >= deadline) {
      throw new LocalFileError('AWS_FILE_LOCKED', `cannot write ${target}: another process holds ${lockPath}`, {
        hint: `If no ozs3 is running, delete ${lockPath}`,
      });
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 200);
  }
}

async function tryCreateLock(lockPath: string, token: string, target: string): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(lockPath, 'wx', 0o600);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw toLocalFileError(error, 'write', target);
  }
  try {
    await handle.writeFile(token);
  } catch (error) {
    await fs.rm(lockPath, { force: true }).catch(() => undefined);
    throw toLocalFileError(error, 'write', target);
  } finally {
    await handle.close().catch(() => undefined);
  }
  return true;
}

/** Remove a lock whose holder died (same host, pid gone) or that is too old. True if it is gone. */
async function breakStaleLock(lockPath: string): Promise<boolean> {
  const observed = await readLock(lockPath);
  if (observed === undefined) return true;
  const age = Date.now() - observed.stat.mtimeMs;
  const [pid, host] = observed.content.split(' ');
  const holderDied = host === hostname() && isProcessGone(Number(pid));
  const stale = holderDied || age > LOCK_STALE_MS || (observed.content === '' && age > EMPTY_LOCK_STALE_MS);
  if (!stale) return false;
  // Look again right before unlinking, so a lock another waiter just took over survives.
  // Two waiters interleaving inside this microsecond window can still collide; that race is accepted.
  const again = await readLock(lockPath);
  if (again === undefined) return true;
  if (again.content !== observed.content || again.stat.mtimeMs !== observed.stat.mtimeMs) return false;
  await fs.rm(lockPath, { force: true }).catch(() => undefined);
  return true;
}

async function readLock(lockPath: string): Promise<{ content: string; stat: Stats } | undefined> {
  try {
    const stat = await fs.stat(lockPath);
    return { content: await fs.readFile(lockPath, 'utf8'), stat };
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw toLocalFileError(error, 'read', lockPath);
  }
}

function isProcessGone(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return errorCode(error) === 'ESRCH';
  }
}

async function releaseLock(lock: FileLock): Promise<void> {
  // Only remove the lock if it is still ours (it may have been broken as stale and retaken).
  const current = await readLock(lock.path).catch(() => undefined);
  if (current?.content === lock.token) await fs.rm(lock.path, { force: true }).catch(() => undefined);
}

/** Temp files left by a writer that was killed: they may hold a secret. Called under the lock. */
async function removeOrphanTempFiles(target: string): Promise<void> {
  const directory = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  const names = await fs.readdir(directory).catch(() => [] as string[]);
  for (const name of names) {
    const isOurs = name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX);
    if (isOurs && /^[0-9a-f]{12}$/.test(name.slice(prefix.length, -TEMP_SUFFIX.length))) {
      await fs.rm(path.join(directory, name), { force: true }).catch(() => undefined);
    }
  }
}

function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

const ERRNO_CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent path is not a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EIO: 'input/output error',
  ENOENT: 'no such file or directory',
};

function toLocalFileError(error: unknown, action: 'read' | 'write', file: string): LocalFileError {
  if (error instanceof LocalFileError) return error;
  const code = errorCode(error);
  const known = code === undefined ? undefined : ERRNO_CAUSES[code];
  const cause = known ?? (error instanceof Error ? error.message : String(error));
  const hint =
    code === 'EACCES' || code === 'EPERM' ? `Check the owner and permissions of ${file} and its directory` : undefined;
  return new LocalFileError(
    action === 'read' ? 'AWS_FILE_UNREADABLE' : 'AWS_FILE_UNWRITABLE',
    `cannot ${action} ${file}: ${cause}`,
    { cause: error, hint },
  );
}
