/** Checks both transports run: the client's credentials and the AWS files. */
import { ExitCode } from '../errors.js';
import { skip } from './check.js';
import type { DoctorContext } from './context.js';
import {
  checkKeytab,
  checkTicketCache,
  credentialsFromPlan,
  ticketFromGss,
  type Credentials,
  type ServicePrincipalOutcome,
} from './credentials.js';
import type { Check } from './runner.js';

export interface CredentialFacts {
  creds: Credentials;
  /**
   * Without klist, the ticket line is decided by asking for the service ticket; the service
   * principal check then reuses that answer instead of asking again.
   */
  askedAlready?: ServicePrincipalOutcome | undefined;
}

/**
 * The ticket (or keytab) check. `askService` requests the service ticket: used only when klist is
 * missing, to tell whether the cache holds a usable ticket.
 */
export function credentialsCheck<F extends CredentialFacts>(
  ctx: DoctorContext,
  askService: (creds: Credentials) => Promise<ServicePrincipalOutcome | undefined>,
): Check<DoctorContext, F> {
  const creds = credentialsFromPlan(ctx.plan.credentials);
  const name = creds.mode === 'keytab' ? 'keytab' : 'ticket';
  return {
    name,
    timeoutMs: ctx.timeoutMs * 2,
    lateExit: ExitCode.auth,
    async run() {
      const toolCtx = { env: ctx.userEnv, cwd: ctx.deps.cwd, timeoutMs: ctx.timeoutMs, trace: ctx.trace };
      const checked =
        creds.mode === 'keytab' ? await checkKeytab(creds, toolCtx) : await checkTicketCache(creds, toolCtx, ctx.krb5);
      if (!checked.creds.klistMissing) {
        const usable = checked.creds.usable && checked.result.status !== 'fail';
        return { result: checked.result, facts: { creds: { ...checked.creds, usable } } as Partial<F> };
      }
      const asked = await askService(checked.creds);
      const fromGss = ticketFromGss(checked.creds, asked?.gssError);
      return { result: fromGss.result, facts: { creds: fromGss.creds, askedAlready: asked } as Partial<F> };
    },
  };
}

export function awsFilesCheck<F>(ctx: DoctorContext): Check<DoctorContext, F> {
  return {
    name: 'aws files',
    timeoutMs: ctx.timeoutMs,
    lateExit: ExitCode.localFiles,
    async run() {
      const { checkAwsFiles } = await import('./aws-files.js');
      return { result: await checkAwsFiles(ctx.userEnv, ctx.deps.homedir) };
    },
  };
}

export const skipped = (name: string, why: string) => ({ result: skip(name, why) });
