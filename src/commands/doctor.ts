/**
 * `ozs3 doctor`: the plan a command would follow (each value and where it came from), then one
 * line per check of what that plan depends on, with a fix. The report is the command's data:
 * stdout. Nothing is created or revoked.
 */
import { ExitCode, Ozs3Error, sanitizeText } from '../errors.js';
import { decideColor } from '../io.js';
import type { Deps } from '../deps.js';
import { loadPlan } from '../plan/load.js';
import { describePlan, type ConnectionFlags, type ConnectionPlan } from '../plan/plan.js';
import { fail, type CheckResult } from '../doctor/check.js';
import type { DoctorContext } from '../doctor/context.js';
import { makeTrace, prepareCredentials } from '../service/open.js';

export interface DoctorOptions extends ConnectionFlags {
  json?: boolean | undefined;
  /** commander's --no-color. */
  color?: boolean | undefined;
}

export const DOCTOR_TIMEOUT_SECONDS = 5;

export interface PlanRow {
  name: string;
  value: string;
  from: string;
}

export interface DoctorReport {
  plan: PlanRow[];
  checks: CheckResult[];
  ok: boolean;
  exitCode: number;
}

export async function runDoctor(opts: DoctorOptions, deps: Deps): Promise<number> {
  const report = await diagnose(opts, deps);
  if (opts.json) {
    const clean = (text: string) => sanitizeText(text, 2000);
    const checks = report.checks.map((c) => ({
      name: c.name,
      status: c.status,
      detail: clean(c.detail),
      fix: c.fix === undefined ? null : clean(c.fix),
    }));
    const plan = report.plan.map((r) => ({ name: r.name, value: clean(r.value), from: clean(r.from) }));
    deps.io.out(`${JSON.stringify({ plan, checks, ok: report.ok })}\n`);
  } else {
    const color = decideColor(deps.env, deps.io.stdoutIsTTY, opts.color === false ? false : undefined);
    deps.io.out(await renderReport(report, color));
  }
  return report.exitCode;
}

export async function renderReport(report: Pick<DoctorReport, 'plan' | 'checks'>, color: boolean): Promise<string> {
  type Paint = (s: string) => string;
  const plain: Paint = (s) => s;
  let paint: Record<CheckResult['status'] | 'fix' | 'dim', Paint> = {
    ok: plain,
    warn: plain,
    fail: plain,
    skip: plain,
    fix: plain,
    dim: plain,
  };
  if (color) {
    const { Chalk } = await import('chalk');
    const chalk = new Chalk({ level: 1 });
    paint = {
      ok: (s) => chalk.green(s),
      warn: (s) => chalk.yellow(s),
      fail: (s) => chalk.red.bold(s),
      skip: (s) => chalk.dim(s),
      fix: (s) => chalk.cyan(s),
      dim: (s) => chalk.dim(s),
    };
  }
  let text = '';
  if (report.plan.length > 0) {
    text += 'plan:\n';
    const width = Math.max(...report.plan.map((r) => r.name.length));
    for (const row of report.plan) {
      text += `  ${row.name.padEnd(width)}  ${sanitizeText(row.value, 2000)} ${paint.dim(`(${sanitizeText(row.from, 500)})`)}\n`;
    }
  }
  for (const check of report.checks) {
    text += `${paint[check.status](check.status.padEnd(4))} ${check.name}: ${sanitizeText(check.detail, 2000)}\n`;
    if (check.fix && (check.status === 'warn' || check.status === 'fail')) {
      text += `  ${paint.fix('fix:')} ${sanitizeText(check.fix, 2000)}\n`;
    }
  }
  return text;
}

export async function diagnose(opts: DoctorOptions, deps: Deps): Promise<DoctorReport> {
  // The environment as the user gave it: keytab login below rewrites KRB5CCNAME in deps.env.
  const userEnv: NodeJS.ProcessEnv = { ...deps.env };
  let plan: ConnectionPlan;
  try {
    plan = await loadPlan(opts, deps, DOCTOR_TIMEOUT_SECONDS);
  } catch (error) {
    if (!(error instanceof Ozs3Error)) throw error;
    const checks = [fail('plan', error.exitCode, error.message, error.hint ?? 'see ozs3 doctor --help')];
    return { plan: [], checks, ok: false, exitCode: error.exitCode };
  }
  const trace = makeTrace(plan, deps);
  const cleanups: (() => Promise<void>)[] = [];
  const { loadKrb5Config } = await import('../doctor/krb5-conf.js');
  const ctx: DoctorContext = {
    plan,
    deps,
    userEnv,
    timeoutMs: plan.timeoutMs.value,
    trace,
    krb5: await loadKrb5Config(userEnv).catch(() => undefined),
    defer: (cleanup) => void cleanups.push(cleanup),
  };
  let checks: CheckResult[];
  try {
    // The same process set-up as a command: keytab login env and realm pinning, before any GSS call.
    await prepareCredentials(plan, deps).catch((error: unknown) => {
      if (!(error instanceof Ozs3Error)) throw error;
    });
    const { runChecks } = await import('../doctor/runner.js');
    if (plan.target.transport === 'rest') {
      if (plan.target.realm) {
        const { pinServiceRealm } = await import('../auth/kerberos-env.js');
        const service = plan.target.service.value;
        pinServiceRealm(deps.env, service.slice(service.indexOf('@') + 1), plan.target.realm.value);
      }
      const { restChecks } = await import('../doctor/rest-checks.js');
      checks = await runChecks(restChecks(ctx, plan.target), ctx);
    } else {
      const { omChecks } = await import('../doctor/om-checks.js');
      checks = await runChecks(omChecks(ctx, plan.target), ctx);
    }
  } finally {
    await Promise.all(cleanups.map((c) => c()));
  }
  const firstFailure = checks.find((c) => c.status === 'fail');
  return {
    plan: describePlan(plan),
    checks,
    ok: !firstFailure,
    exitCode: firstFailure ? (firstFailure.exitCode ?? ExitCode.internal) : ExitCode.ok,
  };
}
