/**
 * Which principal the caller is, before any request: from the ticket cache (`klist`) or the
 * keytab (`--principal`, else its first entry, which is who MIT logs in as). Used where ozs3 must
 * know the access id of "your own secret" up front (revokesecret --write-aws).
 */
import type { CredentialPlan } from '../plan/plan.js';
import { keytabPrincipals, parseKeytabListing, parseKlist, runTool } from './klist.js';

const TOOL_TIMEOUT_MS = 5000;

export async function callerPrincipal(
  credentials: CredentialPlan,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const wanted = credentials.principal?.value;
  if (credentials.mode === 'keytab') {
    const listed = await runTool('klist', ['-kt', credentials.keytabName!], env, TOOL_TIMEOUT_MS);
    const principals =
      listed.code === 0 ? keytabPrincipals(parseKeytabListing(listed.stdout)).map((e) => e.principal) : [];
    if (wanted === undefined) return principals[0];
    return (
      principals.find((p) => p === wanted || p.startsWith(`${wanted}@`)) ?? (wanted.includes('@') ? wanted : undefined)
    );
  }
  const listed = await runTool('klist', [], env, TOOL_TIMEOUT_MS);
  const principal = listed.code === 0 ? parseKlist(listed.stdout).principal : undefined;
  if (wanted === undefined || principal === wanted || principal?.startsWith(`${wanted}@`)) return principal;
  return wanted.includes('@') ? wanted : undefined;
}
