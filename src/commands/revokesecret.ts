/** `ozs3 revokesecret`: revoke S3 secrets, after confirmation. */
import { LocalFileError, UsageError, sanitizeText } from '../errors.js';
import type { Deps } from '../deps.js';
import { PromptAbortedError } from '../io.js';
import { loadPlan } from '../plan/load.js';
import type { ConnectionFlags, ConnectionPlan } from '../plan/plan.js';
import { openSecretService } from '../service/open.js';
import { resolveUsers } from '../batch/users.js';
import { runBatch } from '../batch/run.js';
import { DEFAULT_CONCURRENCY } from './getsecret.js';
import { callerPrincipal } from '../auth/caller.js';
import { shellQuote } from '../format/secret.js';

export interface RevokeSecretOptions extends ConnectionFlags {
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
  let answer: string;
  try {
    answer = await deps.io.prompt(`Revoke the S3 secret for ${sanitizeText(what)}? [y/N] `);
  } catch (error) {
    if (!(error instanceof PromptAbortedError)) throw error;
    // The prompt line is left open: end it before the message.
    deps.io.err('\n');
    throw new UsageError(`not revoked: no answer (${error.how})`, {}, 'NOT_CONFIRMED');
  }
  if (!/^\s*y(es)?\s*$/i.test(answer)) throw new UsageError('not revoked: not confirmed', {}, 'NOT_CONFIRMED');
}

/**
 * --write-aws: the profile must hold the key about to be revoked, and be editable — checked before
 * the DELETE, so a wrong --profile or an unreadable file never leaves a dead key behind.
 */
async function checkProfileHoldsKey(
  opts: RevokeSecretOptions,
  plan: ConnectionPlan,
  user: string | undefined,
  deps: Deps,
): Promise<{ profile: string; accessKey: string }> {
  const { resolveAwsPaths, inspectAwsKeys } = await import('../aws/write-profile.js');
  const profile = opts.profile ?? 'default';
  const paths = resolveAwsPaths(deps.env, deps.homedir);
  const held = await inspectAwsKeys({ profile, paths });
  const accessKey = user ?? (await callerPrincipal(plan.credentials, deps.env));
  if (accessKey === undefined) {
    throw new LocalFileError(
      'AWS_PROFILE_UNCHECKED',
      `cannot tell which principal you are, so not whether profile '${profile}' holds your key; nothing revoked`,
      {
        hint: 'name yourself with -u PRINCIPAL (as in the profile), or leave out --write-aws',
      },
    );
  }
  if (held !== accessKey) {
    throw new LocalFileError(
      'AWS_PROFILE_OTHER_KEY',
      `profile '${profile}' in ${paths.credentials} holds the key of ${sanitizeText(held)}, not of ${sanitizeText(accessKey)}; nothing revoked`,
      { hint: 'check --profile (and -u), or leave out --write-aws to revoke without touching the profile' },
    );
  }
  return { profile, accessKey };
}

export async function runRevokeSecret(opts: RevokeSecretOptions, deps: Deps): Promise<number> {
  if (opts.profile !== undefined && !opts.writeAws) throw new UsageError('--profile only goes with --write-aws');
  const plan = await loadPlan(opts, deps);
  const users = await resolveUsers(opts.user, opts.usersFile, deps);
  const batch = users.length > 1;
  if (opts.writeAws && batch) throw new UsageError('--write-aws edits one profile: name at most one user');
  const profileKey = opts.writeAws ? await checkProfileHoldsKey(opts, plan, users[0], deps) : undefined;
  if (!opts.yes) await confirm(users, deps);

  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const service = await openSecretService(plan, deps, {
    connections: Math.max(1, Math.min(concurrency, users.length)),
  });
  try {
    const outcome = await runBatch(
      {
        users: batch ? users : [users[0]],
        concurrency,
        ordered: false,
        effect: 'revoke',
        showProgress: batch,
        async work(user) {
          await service.revokeSecret(user);
          return { user, revoked: true };
        },
        // Each line as it happens: an interrupted batch leaves a record of what was revoked.
        deliver(result) {
          if (result.revoked) {
            deps.io.err(
              `ozs3: revoked the S3 secret of ${result.user === undefined ? 'your user' : sanitizeText(result.user)}\n`,
            );
          }
        },
        recovery: (user) =>
          `ozs3 revokesecret${user === undefined ? '' : ` -u ${shellQuote(user)}`} --yes (S3_SECRET_NOT_FOUND means it was revoked)`,
      },
      deps,
    );
    const single = outcome.results[0];
    if (!batch && single?.error && outcome.exitCode === single.error.exitCode) throw single.error;
    if (profileKey && single?.revoked) {
      // The server confirmed who we are: trust that over the ticket cache's name.
      const revokedKey = users[0] ?? service.authenticatedPrincipal ?? profileKey.accessKey;
      await removeFromProfile(profileKey.profile, revokedKey, deps);
    }
    return outcome.exitCode;
  } finally {
    await service.close();
  }
}

/** Remove the revoked key pair from the profile, only when the profile holds that very key. */
async function removeFromProfile(profile: string, accessKey: string, deps: Deps): Promise<void> {
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
