/**
 * Commander's parsed values → each command's typed options. This is the one place where untyped
 * option values meet the types: each field is checked, never cast.
 */
import type { Command, OptionValues } from 'commander';
import type { ConnectionFlags } from './plan/plan.js';
import type { GetSecretOptions, IfExists } from './commands/getsecret.js';
import type { RevokeSecretOptions } from './commands/revokesecret.js';
import type { SetSecretOptions } from './commands/setsecret.js';
import type { DoctorOptions } from './commands/doctor.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined;
const ifExists = (v: unknown): IfExists | undefined => (v === 'fail' || v === 'skip' || v === 'rotate' ? v : undefined);

function connectionFlags(o: OptionValues): ConnectionFlags {
  return {
    endpoint: str(o.endpoint),
    om: str(o.om),
    omServiceId: str(o.omServiceId),
    cluster: str(o.cluster),
    spn: str(o.spn),
    keytab: str(o.keytab),
    principal: str(o.principal),
    cacert: str(o.cacert),
    insecure: bool(o.insecure),
    timeout: num(o.timeout),
    retries: num(o.retries),
    mutualAuth: bool(o.mutualAuth),
    verbose: bool(o.verbose),
  };
}

export function readGetSecretOptions(cmd: Command): GetSecretOptions {
  const o = cmd.optsWithGlobals();
  return {
    ...connectionFlags(o),
    user: strings(o.user),
    usersFile: str(o.usersFile),
    export: bool(o.export),
    json: bool(o.json),
    writeAws: bool(o.writeAws),
    profile: str(o.profile),
    region: str(o.region),
    s3Endpoint: str(o.s3Endpoint),
    ifExists: ifExists(o.ifExists),
    concurrency: num(o.concurrency),
  };
}

export function readRevokeSecretOptions(cmd: Command): RevokeSecretOptions {
  const o = cmd.optsWithGlobals();
  return {
    ...connectionFlags(o),
    user: strings(o.user),
    usersFile: str(o.usersFile),
    yes: bool(o.yes),
    writeAws: bool(o.writeAws),
    profile: str(o.profile),
    concurrency: num(o.concurrency),
  };
}

export function readSetSecretOptions(cmd: Command): SetSecretOptions {
  const o = cmd.optsWithGlobals();
  return {
    ...connectionFlags(o),
    user: strings(o.user),
    secret: str(o.secret),
    secretFile: str(o.secretFile),
    export: bool(o.export),
    json: bool(o.json),
    writeAws: bool(o.writeAws),
    profile: str(o.profile),
    region: str(o.region),
    s3Endpoint: str(o.s3Endpoint),
  };
}

export function readDoctorOptions(cmd: Command): DoctorOptions {
  const o = cmd.optsWithGlobals();
  return { ...connectionFlags(o), json: bool(o.json), color: bool(o.color) };
}
