/** `ozs3 getsecret`: create and hand over S3 secrets, printed like `ozone s3 getsecret` or written to ~/.aws. */
import { SecretExistsError, SecretNotFoundError, UsageError, sanitizeText } from '../errors.js';
import type { Deps } from '../deps.js';
import { loadPlan } from '../plan/load.js';
import type { ConnectionFlags } from '../plan/plan.js';
import { openSecretService } from '../service/open.js';
import type { SecretService } from '../service/secret-service.js';
import { resolveUsers } from '../batch/users.js';
import { runBatch, type UserResult } from '../batch/run.js';
import { createSecretOutput, rotateCommand, secretFormat, type SecretOutputFlags } from '../batch/secret-output.js';

export type IfExists = 'fail' | 'skip' | 'rotate';

export const DEFAULT_CONCURRENCY = 4;

export interface GetSecretOptions extends ConnectionFlags, SecretOutputFlags {
  user?: string[] | undefined;
  usersFile?: string | undefined;
  ifExists?: IfExists | undefined;
  concurrency?: number | undefined;
}

/** Get one user's secret, applying --if-exists. */
export async function obtainSecret(
  service: SecretService,
  user: string | undefined,
  ifExists: IfExists,
  deps: Pick<Deps, 'io'>,
): Promise<UserResult> {
  const name = user === undefined ? 'your user' : sanitizeText(user);
  try {
    return { user, secret: await service.getSecret(user) };
  } catch (error) {
    if (!(error instanceof SecretExistsError) || ifExists === 'fail') throw error;
    if (ifExists === 'skip') {
      deps.io.err(`ozs3: ${name} already has an S3 secret; skipped (--if-exists skip)\n`);
      return { user, skipped: true };
    }
    try {
      await service.revokeSecret(user);
    } catch (revokeError) {
      // Someone else revoked it between our two requests: fine, we create a new one below.
      if (!(revokeError instanceof SecretNotFoundError)) throw revokeError;
    }
    deps.io.err(`ozs3: revoked the old S3 secret of ${name} (--if-exists rotate); its key stops working\n`);
    return { user, secret: await service.getSecret(user), rotated: true };
  }
}

export async function runGetSecret(opts: GetSecretOptions, deps: Deps): Promise<number> {
  secretFormat(opts);
  const plan = await loadPlan(opts, deps);
  const users = await resolveUsers(opts.user, opts.usersFile, deps);
  const batch = users.length > 1;
  if (opts.writeAws && batch) {
    throw new UsageError('--write-aws writes one profile: name at most one user', {
      hint: 'use --json to collect several users’ secrets',
    });
  }
  const output = await createSecretOutput(opts, plan, batch, deps);
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const service = await openSecretService(plan, deps, {
    connections: Math.max(1, Math.min(concurrency, users.length)),
  });
  try {
    const outcome = await runBatch(
      {
        users: batch ? users : [users[0]],
        concurrency,
        ordered: true,
        effect: 'create',
        showProgress: batch,
        work: (user) => obtainSecret(service, user, opts.ifExists ?? 'fail', deps),
        deliver: (result) => output.deliver(result),
        recovery: (user) => rotateCommand('getsecret', user),
      },
      deps,
    );
    const single = outcome.results[0];
    // One user: its error is the command's, printed once by main with its hint.
    if (!batch && single?.error && outcome.exitCode === single.error.exitCode) throw single.error;
    output.finish();
    return outcome.exitCode;
  } finally {
    await service.close();
  }
}
