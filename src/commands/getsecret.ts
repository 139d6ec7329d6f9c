/** `ozs3 getsecret`: PUT /secret[/{user}], printed like `ozone s3 getsecret`, or written to ~/.aws. */
import { Ozs3Error, SecretExistsError, SecretNotFoundError, UsageError, sanitizeText } from '../errors.js';
import type { Deps } from '../deps.js';
import type { SecretClient } from '../ozone/client.js';
import type { S3Secret } from '../ozone/response.js';
import {
  formatJsonLine,
  formatLabelled,
  formatSecret,
  type SecretFormat,
  type SecretOutcome,
} from '../format/secret.js';
import { applySettings, openSecretClient, type ConnectionOptions } from './connect.js';
import { mapConcurrent, resolveUsers } from './users.js';
import { createProgress, reportFailure, firstFailureCode, maskSecret } from './batch.js';

export type IfExists = 'fail' | 'skip' | 'rotate';

export interface GetSecretOptions extends ConnectionOptions {
  user?: string[] | undefined;
  usersFile?: string | undefined;
  export?: boolean | undefined;
  json?: boolean | undefined;
  writeAws?: boolean | undefined;
  profile?: string | undefined;
  region?: string | undefined;
  s3Endpoint?: string | undefined;
  ifExists?: IfExists | undefined;
  concurrency?: number | undefined;
}

export const DEFAULT_CONCURRENCY = 4;

function checkFlags(opts: GetSecretOptions): SecretFormat {
  if (opts.export && opts.json) throw new UsageError('-e/--export and --json cannot be used together');
  if (!opts.writeAws) {
    for (const [flag, value] of [
      ['--profile', opts.profile],
      ['--region', opts.region],
      ['--s3-endpoint', opts.s3Endpoint],
    ] as const) {
      if (value !== undefined) throw new UsageError(`${flag} only goes with --write-aws`);
    }
  }
  if (opts.s3Endpoint !== undefined) {
    try {
      const url = new URL(opts.s3Endpoint);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    } catch {
      throw new UsageError(`invalid --s3-endpoint '${sanitizeText(opts.s3Endpoint)}': expected an http(s) URL`);
    }
  }
  return opts.json ? 'json' : opts.export ? 'export' : 'ozone';
}

/** Get one user's secret, applying --if-exists. */
export async function obtainSecret(
  client: SecretClient,
  user: string | undefined,
  ifExists: IfExists,
  deps: Deps,
): Promise<SecretOutcome> {
  try {
    return { user, secret: await client.getSecret(user) };
  } catch (error) {
    if (!(error instanceof SecretExistsError) || ifExists === 'fail') throw error;
    if (ifExists === 'skip') {
      deps.io.err(`ozs3: ${user ?? 'your user'} already has an S3 secret; skipped (--if-exists skip)\n`);
      return { user, skipped: true };
    }
    try {
      await client.revokeSecret(user);
    } catch (revokeError) {
      // Someone else revoked it between our two requests: fine, we create a new one below.
      if (!(revokeError instanceof SecretNotFoundError)) throw revokeError;
    }
    deps.io.err(
      `ozs3: revoked the old S3 secret of ${user ?? 'your user'} (--if-exists rotate); its key stops working\n`,
    );
    return { user, secret: await client.getSecret(user) };
  }
}

export async function runGetSecret(flags: GetSecretOptions, deps: Deps): Promise<number> {
  const format = checkFlags(flags);
  const opts = await applySettings(flags, deps);
  const users = await resolveUsers(opts.user, opts.usersFile, deps);
  const ifExists = opts.ifExists ?? 'fail';
  if (opts.writeAws && users.length > 1) {
    throw new UsageError('--write-aws writes one profile: name at most one user', {
      hint: 'use --json to collect several users’ secrets',
    });
  }
  const aws = opts.writeAws ? await prepareAwsWrite(opts, deps) : undefined;

  const client = await openSecretClient(
    opts,
    deps,
    Math.max(1, Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, users.length)),
  );
  try {
    if (users.length <= 1) {
      const outcome = await obtainSecret(client, users[0], ifExists, deps);
      if (outcome.secret) {
        maskSecret(outcome.secret, deps);
        if (aws) await aws.write(outcome.secret);
        if (!aws || opts.export || opts.json) deps.io.out(formatSecret(format, outcome.secret));
      } else if (format === 'json') {
        deps.io.out(formatJsonLine(outcome));
      }
      return 0;
    }
    return await runBatch(client, users, format, ifExists, opts, deps);
  } finally {
    await client.close();
  }
}

async function runBatch(
  client: SecretClient,
  users: string[],
  format: SecretFormat,
  ifExists: IfExists,
  opts: GetSecretOptions,
  deps: Deps,
): Promise<number> {
  const progress = createProgress(deps, users.length);
  const outcomes: SecretOutcome[] = new Array(users.length);
  let printed = 0;
  // Print in input order as soon as every earlier user is done.
  const flush = () => {
    while (printed < users.length && outcomes[printed]) {
      const outcome = outcomes[printed++]!;
      if (outcome.secret) maskSecret(outcome.secret, deps);
      if (format === 'json') deps.io.out(formatJsonLine(outcome));
      else deps.io.out(formatLabelled(format, outcome));
      if (outcome.error) reportFailure(deps, outcome.user, outcome.error);
    }
  };
  await mapConcurrent(users, opts.concurrency ?? DEFAULT_CONCURRENCY, async (user, index) => {
    try {
      outcomes[index] = await obtainSecret(client, user, ifExists, deps);
    } catch (error) {
      if (!(error instanceof Ozs3Error)) throw error;
      outcomes[index] = { user, error };
    }
    progress.tick();
    flush();
  });
  progress.done();
  return firstFailureCode(outcomes);
}

interface PreparedAwsWrite {
  write(secret: S3Secret): Promise<void>;
}

/**
 * Check the AWS files before asking for a secret: Ozone shows a secret once, so a file we cannot
 * edit must stop the run before the secret exists, not after.
 */
async function prepareAwsWrite(opts: GetSecretOptions, deps: Deps): Promise<PreparedAwsWrite> {
  const { resolveAwsPaths, writeAwsProfile, checkAwsProfileWritable } = await import('../aws/write-profile.js');
  const paths = resolveAwsPaths(deps.env, deps.homedir);
  const profile = opts.profile ?? 'default';
  const base = { profile, region: opts.region, s3Endpoint: opts.s3Endpoint, paths };
  await checkAwsProfileWritable(base);
  return {
    async write(secret) {
      try {
        const result = await writeAwsProfile({ ...base, accessKey: secret.awsAccessKey, secret: secret.awsSecret });
        for (const notice of result.notices) deps.io.err(`ozs3: ${notice}\n`);
      } catch (error) {
        // The secret exists now and Ozone will not show it again: hand it over rather than lose it.
        if (!opts.export && !opts.json) {
          deps.io.err('ozs3: could not write the AWS files; the new secret follows on stdout so it is not lost\n');
          deps.io.out(formatSecret('ozone', secret));
        }
        throw error;
      }
      deps.io.err(`ozs3: wrote profile '${profile}' to ${paths.credentials} and ${paths.config}\n`);
    },
  };
}
