/**
 * Runs a command's per-user work with bounded concurrency, and makes sure nothing is lost quietly:
 * Ozone shows a secret once, so every secret created and not delivered — stdout gone (EPIPE,
 * ENOSPC, closed), or the run interrupted — is named on stderr with its recovery. A run stops
 * starting requests once its output is gone or a signal came, waits briefly for those in flight,
 * delivers what arrived, and sums up.
 */
import { ExitCode, Ozs3Error, ResponseError, sanitizeText } from '../errors.js';
import type { Deps, InterruptSignal } from '../deps.js';
import { OutputError } from '../io.js';
import type { S3Secret } from '../rest/secret-xml.js';

/** One user's outcome. `user` is undefined for the caller's own secret. */
export interface UserResult {
  user: string | undefined;
  /** A secret the server created (or set): lost unless delivered. */
  secret?: S3Secret | undefined;
  /** The user chose this secret (setsecret): not lost when not printed. */
  known?: boolean | undefined;
  /** --if-exists rotate revoked the old secret before this one was made. */
  rotated?: boolean | undefined;
  skipped?: boolean | undefined;
  revoked?: boolean | undefined;
  error?: Ozs3Error | undefined;
}

export interface BatchSpec {
  users: readonly (string | undefined)[];
  concurrency: number;
  /** The per-user work. An Ozs3Error it throws becomes that user's error result. */
  work(user: string | undefined): Promise<UserResult>;
  /**
   * Hands a result over (stdout and/or files). Called in input order when `ordered`, else as
   * results arrive. Throws OutputError when stdout is gone.
   */
  deliver(result: UserResult): Promise<void> | void;
  ordered: boolean;
  /** The command line that gets a lost secret back, for one user (e.g. `ozs3 getsecret -u bob --if-exists rotate`). */
  recovery(user: string | undefined): string;
  /** What the request does to the server, for in-flight warnings: 'create' a secret, 'revoke' one or 'set' one. */
  effect: 'create' | 'revoke' | 'set';
  /** Show done/total on a terminal and a summary line at the end (several users). */
  showProgress: boolean;
}

export interface BatchOutcome {
  results: (UserResult | undefined)[];
  exitCode: number;
}

/** How long in-flight requests get to finish after a signal before the run gives up on them. */
export const INTERRUPT_GRACE_MS = 2000;

const SIGNAL_EXIT: Record<InterruptSignal, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

function who(user: string | undefined): string {
  return user === undefined ? 'your user' : sanitizeText(user);
}

/**
 * A success answer ozs3 could not read still created a secret (Ozone made it, then the answer broke):
 * it is lost like an undelivered one, so the error says so and how to get a new one.
 */
function withRecovery(error: Ozs3Error, spec: BatchSpec, user: string | undefined): Ozs3Error {
  if (error.code !== 'MALFORMED_RESPONSE' || spec.effect !== 'create') return error;
  return new ResponseError(error.code, error.message, {
    hint: `the server answered success, so a new secret may exist that nobody has seen. Recover: ${spec.recovery(user)}`,
    cause: error,
  });
}

export async function runBatch(spec: BatchSpec, deps: Deps): Promise<BatchOutcome> {
  const { users } = spec;
  const total = users.length;
  const results = new Array<UserResult | undefined>(total);
  const delivered = new Array<boolean>(total).fill(false);
  const inFlight = new Set<number>();
  let next = 0;
  let finished = 0;
  let printed = 0;
  let outputError: OutputError | undefined;
  let signal: InterruptSignal | undefined;
  // Set once the run has been summed up: an answer arriving later is neither delivered nor counted.
  let settled = false;
  let wakeUp: () => void = () => {};
  const interrupted = new Promise<void>((resolve) => (wakeUp = resolve));

  const stopInterrupts = deps.onInterrupt((received) => {
    if (signal) {
      wakeUp(); // a second signal: stop waiting at once
      return;
    }
    signal = received;
    deps.io.status(undefined);
    deps.io.err(
      `ozs3: ${received}: starting no more requests; waiting up to ${INTERRUPT_GRACE_MS / 1000} s for ${inFlight.size} in flight\n`,
    );
    setTimeout(wakeUp, INTERRUPT_GRACE_MS).unref();
  });

  const deliverOne = async (index: number) => {
    const result = results[index]!;
    try {
      await spec.deliver(result);
      delivered[index] = true;
    } catch (error) {
      if (!(error instanceof OutputError)) throw error;
      outputError ??= error;
    }
  };

  const flush = async () => {
    if (!spec.ordered) return;
    while (!outputError && printed < total && results[printed]) await deliverOne(printed++);
  };

  const worker = async () => {
    while (next < total && !signal && !outputError) {
      const index = next++;
      inFlight.add(index);
      let result: UserResult;
      try {
        result = await spec.work(users[index]);
      } catch (error) {
        if (!(error instanceof Ozs3Error)) throw error;
        result = { user: users[index], error: withRecovery(error, spec, users[index]) };
      }
      if (settled) return;
      inFlight.delete(index);
      results[index] = result;
      finished++;
      // A failure is told as it happens; data goes to stdout in input order.
      if (result.error && total > 1) reportFailure(deps, result.user, result.error);
      if (spec.showProgress) deps.io.status(`${finished}/${total} done`);
      if (spec.ordered) await flush();
      else if (!outputError) await deliverOne(index);
    }
  };

  try {
    const workers = Promise.all(Array.from({ length: Math.max(1, Math.min(spec.concurrency, total)) }, worker));
    // After a signal, the in-flight requests get INTERRUPT_GRACE_MS (or until a second signal).
    await Promise.race([workers, interrupted]);
  } finally {
    settled = true;
    stopInterrupts();
    deps.io.status(undefined);
  }

  // Interrupted: deliver what arrived, even past a gap left by a request still in flight.
  if (signal && spec.ordered) {
    for (let i = printed; i < total && !outputError; i++) if (results[i] && !delivered[i]) await deliverOne(i);
  }

  const lost = results.filter((r, i): r is UserResult => Boolean(r?.secret) && !r?.known && !delivered[i]);
  for (const result of lost) {
    const why = outputError ? `stdout failed: ${outputError.errno}` : `interrupted by ${signal}`;
    const rotated = result.rotated ? ' (the old one was revoked)' : '';
    deps.io.err(
      `ozs3: ${who(result.user)}: the new S3 secret was created but not delivered (${why}); Ozone will not show it again${rotated}. Recover: ${spec.recovery(result.user)}\n`,
    );
  }
  for (const index of inFlight) {
    const user = users[index];
    const effect = {
      create: 'the server may have created a secret that is now lost',
      revoke: 'the secret may have been revoked',
      set: 'the secret may have been set to the one you gave',
    }[spec.effect];
    deps.io.err(
      `ozs3: ${who(user)}: stopped while the request was in flight: ${effect}. To be sure: ${spec.recovery(user)}\n`,
    );
  }

  const notStarted = total - next;
  const done = results.filter((r, i) => r && !r.error && (delivered[i] || !r.secret || r.known)).length;
  const failed = results.filter((r) => r?.error).length;
  if (signal || outputError || total > 1) {
    const parts = [`${done} done`];
    if (failed) parts.push(`${failed} failed`);
    if (lost.length) parts.push(`${lost.length} not delivered`);
    if (inFlight.size) parts.push(`${inFlight.size} in flight (outcome unknown)`);
    if (notStarted) parts.push(`${notStarted} not started`);
    const why = signal ? `interrupted by ${signal}` : outputError ? 'stopped: stdout failed' : `${total} users`;
    deps.io.err(`ozs3: ${why}: ${parts.join(', ')}\n`);
  }

  let exitCode: number = firstFailureCode(results);
  if (outputError) {
    deps.io.err(`ozs3: ${outputError.message}\n`);
    exitCode = outputError.exitCode;
  }
  if (signal) exitCode = SIGNAL_EXIT[signal];
  return { results, exitCode };
}

export function reportFailure(deps: Deps, user: string | undefined, error: Ozs3Error): void {
  deps.io.err(`ozs3: ${user === undefined ? '' : `${sanitizeText(user)}: `}${sanitizeText(error.message, 2000)}\n`);
}

/** 0 when all succeeded, else the exit code of the first failure in input order. */
export function firstFailureCode(results: readonly (UserResult | undefined)[]): number {
  for (const result of results) if (result?.error) return result.error.exitCode;
  return ExitCode.ok;
}

/** On GitHub Actions, register the secret as a mask (on stderr, which reaches the runner even when stdout is captured). */
export function maskSecret(secret: S3Secret, deps: Deps): void {
  if (deps.env.GITHUB_ACTIONS === 'true') deps.io.err(`::add-mask::${secret.awsSecret}\n`);
}
