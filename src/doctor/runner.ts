/**
 * Doctor checks as data: each check names the checks whose facts it needs, runs once they are done,
 * and returns its line and the facts it learnt. No check changes another's result; the report is
 * the list of lines in declared order. Independent checks run concurrently.
 */
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { fail, withTimeout, type CheckResult } from './check.js';

export interface CheckOutcome<F> {
  result: CheckResult;
  facts?: Partial<F> | undefined;
}

export interface Check<C, F> {
  name: string;
  /** Checks whose facts this one reads; it starts when they are done. */
  after?: readonly string[] | undefined;
  /** Deadline for the check (a slow one becomes a failed line, not a stuck report). */
  timeoutMs: number;
  /** Exit status when it runs out of time. */
  lateExit: ExitCodeValue;
  run(ctx: C, facts: Readonly<Partial<F>>): CheckOutcome<F> | Promise<CheckOutcome<F>>;
}

export async function runChecks<C, F>(checks: readonly Check<C, F>[], ctx: C): Promise<CheckResult[]> {
  const byName = new Map(checks.map((c) => [c.name, c]));
  const started = new Map<string, Promise<{ facts: Partial<F>; result: CheckResult }>>();
  // Starts a check once its inputs are done; what it passes on is its facts and those it was given.
  const start = (check: Check<C, F>, path: string[]): Promise<{ facts: Partial<F>; result: CheckResult }> => {
    const running = started.get(check.name);
    if (running) return running;
    if (path.includes(check.name))
      throw new Error(`doctor checks wait on each other: ${[...path, check.name].join(' → ')}`);
    const inputs = (check.after ?? []).map((name) => {
      const needed = byName.get(name);
      if (!needed) throw new Error(`doctor check '${check.name}' runs after an unknown check '${name}'`);
      return start(needed, [...path, check.name]);
    });
    const promise = Promise.all(inputs).then(async (done) => {
      const given = mergeFacts<F>(done.map((d) => d.facts));
      const outcome = await guarded(check, ctx, given);
      return { facts: mergeFacts<F>([given, outcome.facts ?? {}]), result: outcome.result };
    });
    started.set(check.name, promise);
    return promise;
  };
  return Promise.all(checks.map((check) => start(check, []).then((d) => d.result)));
}

/** A check that throws is a bug in ozs3: its line says so, and the rest of the report still comes. */
async function guarded<C, F>(check: Check<C, F>, ctx: C, facts: Partial<F>): Promise<CheckOutcome<F>> {
  try {
    return await withTimeout(
      Promise.resolve().then(() => check.run(ctx, facts)),
      check.timeoutMs,
      () => ({
        result: fail(
          check.name,
          check.lateExit,
          `no answer within ${check.timeoutMs / 1000} s`,
          'raise --timeout, or check the network path',
        ),
      }),
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      result: fail(
        check.name,
        ExitCode.internal,
        `internal error: ${message}`,
        'this is a bug in ozs3; run with --verbose and report it',
      ),
    };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * Facts from several checks, later ones winning; records keyed per node (`{ om1: … }`, `{ om2: … }`)
 * are merged, so a check after every node's chain sees all of them.
 */
export function mergeFacts<F>(all: Partial<F>[]): Partial<F> {
  const merged: Record<string, unknown> = {};
  for (const facts of all) {
    for (const [key, value] of Object.entries(facts as Record<string, unknown>)) {
      const before = merged[key];
      merged[key] = isRecord(before) && isRecord(value) ? { ...before, ...value } : value;
    }
  }
  return merged as Partial<F>;
}
