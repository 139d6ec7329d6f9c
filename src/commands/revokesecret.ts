/** `ozs3 revokesecret`: DELETE /secret[/{user}], after confirmation. */
import { Ozs3Error, UsageError, sanitizeText } from '../errors.js';
import type { Deps } from '../deps.js';
import type { SecretOutcome } from '../format/secret.js';
import { applySettings, openSecretClient, type ConnectionOptions } from './connect.js';
import { mapConcurrent, resolveUsers } from './users.js';
import { createProgress, firstFailureCode, reportFailure } from './batch.js';
import { DEFAULT_CONCURRENCY } from './getsecret.js';

export interface RevokeSecretOptions extends ConnectionOptions {
  user?: string[] | undefined;
  usersFile?: string | undefined;
  yes?: boolean | undefined;
  writeAws?: boolean | undefined;
  profile?: string | undefined;
  concurrency?: number | undefined;
}

async function confirm(users: string[], deps: Deps): Promise<void> {
  const what =
    users.length === 0
      ? 'your own user'
      : users.length === 1
        ? users[0]!
        : `${users.length} users (${users.slice(0, 5).join(', ')}${users.length > 5 ? ', …' : ''})`;
  if (!deps.io.stdinIsTTY) {
    throw new UsageError('not revoking: confirmation needed, and stdin is not a terminal', {
      hint: 'pass -y/--yes to revoke without asking',
    });
  }
  const answer = await deps.io.prompt(`Revoke the S3 secret for ${sanitizeText(what)}? [y/N] `);
  if (!/^\s*y(es)?\s*$/i.test(answer)) throw new UsageError('not revoked: not confirmed', {}, 'NOT_CONFIRMED');
}

export async function runRevokeSecret(flags: RevokeSecretOptions, deps: Deps): Promise<number> {
  if (flags.profile !== undefined && !flags.writeAws) throw new UsageError('--profile only goes with --write-aws');
  const opts = await applySettings(flags, deps);
  const users = await resolveUsers(opts.user, opts.usersFile, deps);
  if (opts.writeAws && users.length > 1) throw new UsageError('--write-aws edits one profile: name at most one user');
  if (!opts.yes) await confirm(users, deps);

  const client = await openSecretClient(
    opts,
    deps,
    Math.max(1, Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, users.length)),
  );
  try {
    if (users.length <= 1) {
      const user = users[0];
      await client.revokeSecret(user);
      deps.io.err(`ozs3: revoked the S3 secret of ${user === undefined ? 'your user' : sanitizeText(user)}\n`);
      if (opts.writeAws) await removeFromProfile(opts, deps, user ?? client.authenticatedPrincipal);
      return 0;
    }
    const progress = createProgress(deps, users.length);
    const outcomes = await mapConcurrent(
      users,
      opts.concurrency ?? DEFAULT_CONCURRENCY,
      async (user): Promise<SecretOutcome> => {
        try {
          await client.revokeSecret(user);
          return { user };
        } catch (error) {
          if (!(error instanceof Ozs3Error)) throw error;
          return { user, error };
        } finally {
          progress.tick();
        }
      },
    );
    progress.done();
    for (const outcome of outcomes) {
      if (outcome.error) reportFailure(deps, outcome.user, outcome.error);
      else deps.io.err(`ozs3: revoked the S3 secret of ${sanitizeText(outcome.user ?? '')}\n`);
    }
    return firstFailureCode(outcomes);
  } finally {
    await client.close();
  }
}

/** Remove the revoked key pair from the profile, only when the profile holds that very key. */
async function removeFromProfile(opts: RevokeSecretOptions, deps: Deps, accessKey: string | undefined): Promise<void> {
  const profile = opts.profile ?? 'default';
  if (accessKey === undefined) {
    deps.io.err(
      `ozs3: profile '${profile}' left as is: the server did not confirm which principal you are (no mutual authentication token)\n`,
    );
    return;
  }
  const { resolveAwsPaths, removeAwsKeys } = await import('../aws/write-profile.js');
  const paths = resolveAwsPaths(deps.env, deps.homedir);
  const result = await removeAwsKeys({ profile, accessKey, paths });
  for (const notice of result.notices) deps.io.err(`ozs3: ${notice}\n`);
  deps.io.err(
    result.removed
      ? `ozs3: removed the revoked key from profile '${profile}' in ${paths.credentials}\n`
      : `ozs3: profile '${profile}' does not hold the revoked key; ${paths.credentials} left as is\n`,
  );
}
