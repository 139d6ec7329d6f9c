/**
 * The SecretService over the OzoneManager's own RPC, as `ozone s3 getsecret|revokesecret|setsecret`
 * speak it (docs/om-rpc.md). One connection per OM, reused for a whole batch with calls pipelined on
 * it; HA failover and retries inside one deadline per logical request; a new call id for every
 * logical call, the same (client id, call id) with retryCount + 1 for its retries, as Hadoop's
 * RetryInvocationHandler does, so the OM's retry cache answers a retry and never a new call.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { NetworkError, type Ozs3Error, ResponseError, SecretExistsError, UsageError, sanitizeText } from '../errors.js';
import type { S3Secret, SecretService } from '../service/secret-service.js';
import {
  COMMAND_TYPE,
  OmRemoteError,
  callFailure,
  interpretResponse,
  suggestedLeader,
  type Operation,
} from './answers.js';
import { OmConnection, asOzs3Error, type HandshakeFacts } from './connection.js';
import { FailoverPlan, type FailureKind } from './failover.js';
import { OMRequestSchema, Status, type OMRequest } from './gen/OmClientProtocol_pb.js';
import { loadGss, type Gss } from './gssapi.js';
import { parseProtection, type Protection } from './layers.js';
import { resolveServicePrincipal, type ServicePrincipal } from './principal.js';
import { nodeLabel, type OmNode, type OmTargetSpec } from './target.js';

export type { OmNode, OmTargetSpec } from './target.js';
export type { Protection } from './layers.js';
export type { HandshakeFacts } from './connection.js';

export interface OmServiceOptions {
  target: OmTargetSpec;
  /** `--principal`: which of the cache's (or keytab's) principals to authenticate as. */
  principal?: string | undefined;
  /**
   * The keytab the run logged in from, for error wording. The login itself (KRB5_CLIENT_KTNAME and
   * a private MEMORY cache) must be in the environment before the first call: auth/kerberos-env.ts.
   */
  keytab?: string | undefined;
  /** hadoop.rpc.protection here (comma list); undefined: accept what the OM requires. */
  protection?: string | readonly Protection[] | undefined;
  /** Deadline of one logical request: connecting, SASL, failovers, waits and the answer. */
  timeoutMs: number;
  /** Rounds of retries over unreachable OMs (the REST client's --retries). */
  retries: number;
  /** Called once per connection, after SASL: what was negotiated (for the warning on authentication-only). */
  onEstablished?: ((facts: HandshakeFacts) => void) | undefined;
  /** For --verbose: states, principals, layers, call ids, statuses; never tokens or secrets. */
  trace?: ((line: string) => void) | undefined;
  /** Ozone's ozone.client.wait.between.retries.millis: not-ready and full-round waits (default 2000). */
  waitBetweenRetriesMs?: number | undefined;
  /** Test seams. */
  gss?: Gss | undefined;
  now?: (() => number) | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
  random?: (() => number) | undefined;
}

/** Ozone's ClientVersion.CURRENT_VERSION (BUCKET_LAYOUT_SUPPORT). */
const CLIENT_VERSION = 3;
const DEFAULT_WAIT_BETWEEN_RETRIES_MS = 2000;

export interface OmSecretService extends SecretService {
  readonly transport: 'om';
  /** What the most recent handshake established (for --verbose and doctor). */
  readonly facts: HandshakeFacts | undefined;
}

export async function createOmSecretService(opts: OmServiceOptions): Promise<OmSecretService> {
  const settings = prepare(opts);
  const gss = opts.gss ?? (await loadGss());
  return new OmClient(opts, settings, gss);
}

interface Prepared {
  nodes: readonly OmNode[];
  principals: ServicePrincipal[];
  protection: Protection[] | undefined;
  now: () => number;
}

/** Everything checkable before the network: nodes, principals, protection. */
function prepare(opts: OmServiceOptions): Prepared {
  const nodes = opts.target.nodes;
  if (nodes.length === 0) throw new UsageError('no OzoneManager address: give --om HOST[:PORT] or --om-service-id');
  return {
    nodes,
    principals: nodes.map((n) => resolveServicePrincipal(opts.target.principal, n.host)),
    protection: parseProtection(opts.protection),
    // process.hrtime, not performance.now(): the performance global loads perf_hooks on first use.
    now: opts.now ?? (() => Number(process.hrtime.bigint()) / 1e6),
  };
}

class OmClient implements OmSecretService {
  readonly transport = 'om' as const;
  authenticatedPrincipal: string | undefined;
  facts: HandshakeFacts | undefined;
  /** Hadoop's ClientId: 16 random bytes, one per run, on every connection. */
  private readonly clientId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
  /** OMRequest.clientId, a free-form string in Ozone. */
  private readonly omClientId = `ozs3-${randomUUID()}`;
  private callCounter = 0;
  /** The node that answered last: where the next call goes first (Java's currentProxyIndex). */
  private leader = 0;
  private readonly connections = new Map<number, Promise<OmConnection>>();
  private closed = false;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly opts: OmServiceOptions,
    private readonly settings: Prepared,
    private readonly gss: Gss,
  ) {
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async getSecret(user: string | undefined): Promise<S3Secret> {
    return (await this.perform('get', user))!;
  }

  async revokeSecret(user: string | undefined): Promise<void> {
    await this.perform('revoke', user);
  }

  async setSecret(user: string | undefined, secret: string): Promise<S3Secret> {
    return (await this.perform('set', user, secret))!;
  }

  async close(): Promise<void> {
    this.closed = true;
    const open = [...this.connections.values()];
    this.connections.clear();
    for (const pending of open) {
      try {
        (await pending).close();
      } catch {
        // it never opened
      }
    }
  }

  /** Call ids are ≥ 0 and wrap at 2^31, as Hadoop's Client.nextCallId. */
  private nextCallId(): number {
    const id = this.callCounter;
    this.callCounter = (this.callCounter + 1) & 0x7fffffff;
    return id;
  }

  private async perform(op: Operation, user: string | undefined, secret?: string): Promise<S3Secret | undefined> {
    if (this.closed) throw new ResponseError('CLOSED', 'internal: the OM service was used after close()');
    const { now } = this.settings;
    const deadline = now() + this.opts.timeoutMs;
    const callId = this.nextCallId();
    const plan = new FailoverPlan(this.settings.nodes, {
      waitBetweenRetriesMs: this.opts.waitBetweenRetriesMs ?? DEFAULT_WAIT_BETWEEN_RETRIES_MS,
      retries: this.opts.retries,
      random: this.opts.random ?? Math.random,
    });
    let node = this.leader;
    let retryCount = 0;
    let request: OMRequest | undefined;
    let accessId = user;
    let lostAfterWrite = false;
    for (;;) {
      let written = false;
      try {
        const conn = await this.connection(node, deadline);
        accessId ??= conn.facts.caller!;
        request ??= this.buildRequest(op, accessId, secret);
        this.trace(
          `rpc: > call ${callId} ${op} for ${sanitizeText(accessId)}${retryCount > 0 ? ` (retry ${retryCount})` : ''} to ${nodeLabel(this.settings.nodes[node]!)}`,
        );
        const response = await conn.call({ callId, retryCount, request }, deadline, () => {
          written = true;
        });
        this.leader = node;
        this.trace(`rpc: < call ${callId} ${Status[response.status] ?? response.status}`);
        return interpretResponse(op, accessId, response, conn.facts.caller);
      } catch (raw) {
        const error = asOzs3Error(raw);
        const kind = failureKind(error, this.settings.nodes.length);
        const next =
          kind &&
          plan.after(kind, node, error instanceof OmRemoteError ? suggestedLeader(error.remoteMessage) : undefined);
        if (written && error instanceof NetworkError) lostAfterWrite = true;
        if (!next || now() + next.waitMs >= deadline) throw this.finalError(op, user, error, lostAfterWrite);
        this.trace(
          `rpc: call ${callId} failed on ${nodeLabel(this.settings.nodes[node]!)} (${error.code}); ${next.next === node ? 'again' : `next ${nodeLabel(this.settings.nodes[next.next]!)}`}${next.waitMs > 0 ? ` in ${next.waitMs} ms` : ''}`,
        );
        if (next.waitMs > 0) await this.sleep(next.waitMs);
        node = next.next;
        retryCount++;
      }
    }
  }

  private finalError(op: Operation, user: string | undefined, error: Ozs3Error, lostAfterWrite: boolean): Ozs3Error {
    if (error instanceof SecretExistsError && op === 'get' && lostAfterWrite) {
      const who = user === undefined ? 'you' : sanitizeText(user);
      return new SecretExistsError(
        `S3_SECRET_ALREADY_EXISTS for ${who} after a lost response: the secret was probably created by the earlier attempt, and Ozone shows a secret only once`,
        { hint: 'get a new one with --if-exists rotate (the lost secret stops working)' },
      );
    }
    return error instanceof OmRemoteError ? callFailure(error) : error;
  }

  private buildRequest(op: Operation, accessId: string, secret: string | undefined): OMRequest {
    const common = { cmdType: COMMAND_TYPE[op], clientId: this.omClientId, version: CLIENT_VERSION };
    // As `ozone s3 getsecret` sends it: create the secret when there is none.
    if (op === 'get') {
      return create(OMRequestSchema, {
        ...common,
        getS3SecretRequest: { kerberosID: accessId, createIfNotExist: true },
      });
    }
    if (op === 'revoke') return create(OMRequestSchema, { ...common, RevokeS3SecretRequest: { kerberosID: accessId } });
    return create(OMRequestSchema, { ...common, SetS3SecretRequest: { accessId, secretKey: secret ?? '' } });
  }

  /** The node's open connection, or a new one (shared by every call that needs it meanwhile). */
  private async connection(index: number, deadline: number): Promise<OmConnection> {
    const existing = this.connections.get(index);
    if (existing) {
      const conn = await existing.catch(() => undefined);
      if (conn?.usable) return conn;
      if (this.connections.get(index) === existing) this.connections.delete(index);
    }
    const node = this.settings.nodes[index]!;
    const { now } = this.settings;
    // With several OMs one that black-holes the connection must not use up the whole deadline.
    const count = this.settings.nodes.length;
    const budget = count > 1 ? Math.max(2000, this.opts.timeoutMs / count) : this.opts.timeoutMs;
    const opening = OmConnection.open({
      host: node.host,
      port: node.port,
      nodeId: node.nodeId,
      principal: this.settings.principals[index]!,
      protection: this.settings.protection,
      clientId: this.clientId,
      gss: this.gss,
      initiator: this.opts.principal,
      keytab: this.opts.keytab,
      deadline: Math.min(deadline, now() + budget),
      timeoutMs: this.opts.timeoutMs,
      now,
      trace: this.opts.trace,
    });
    this.connections.set(index, opening);
    try {
      const conn = await opening;
      this.facts = conn.facts;
      this.authenticatedPrincipal ??= conn.facts.caller;
      this.opts.onEstablished?.(conn.facts);
      if (this.closed) conn.close();
      return conn;
    } catch (error) {
      if (this.connections.get(index) === opening) this.connections.delete(index);
      throw error;
    }
  }

  private trace(line: string): void {
    this.opts.trace?.(line);
  }
}

/** Which failures move a logical call on (and how); undefined: report it. */
function failureKind(error: Ozs3Error, nodeCount: number): FailureKind | undefined {
  if (error instanceof OmRemoteError) {
    if (error.notLeader) return 'not-leader';
    if (error.retrySameNode) return 'not-ready';
    return undefined;
  }
  if (error instanceof NetworkError) {
    if (error.code === 'CLOSED') return undefined;
    // One OM whose name does not resolve will not resolve on a retry either.
    if (error.code === 'DNS' && nodeCount === 1) return undefined;
    return 'unreachable';
  }
  return undefined;
}

export interface OmProbe extends HandshakeFacts {
  /** The failure, when the OM could not be reached or authenticated. */
  error?: Ozs3Error | undefined;
}

/**
 * For `ozs3 doctor`: connect, SASL and connection context with every configured OM (no OMRequest),
 * in parallel, each within `timeoutMs`; returns what each handshake established or how it failed.
 */
export async function probeOm(opts: OmServiceOptions): Promise<OmProbe[]> {
  const settings = prepare(opts);
  const gss = opts.gss ?? (await loadGss());
  const clientId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
  return Promise.all(
    settings.nodes.map(async (node, i) => {
      const trace = opts.trace && ((line: string) => opts.trace!(`[${nodeLabel(node)}] ${line}`));
      const conn = OmConnection.create({
        host: node.host,
        port: node.port,
        nodeId: node.nodeId,
        principal: settings.principals[i]!,
        protection: settings.protection,
        clientId,
        gss,
        initiator: opts.principal,
        keytab: opts.keytab,
        deadline: settings.now() + opts.timeoutMs,
        timeoutMs: opts.timeoutMs,
        now: settings.now,
        trace,
      });
      try {
        await conn.establish();
        return { ...conn.facts };
      } catch (error) {
        // What the handshake learnt before it failed (auths offered, principal check) helps the diagnosis.
        return { ...conn.facts, error: asOzs3Error(error) };
      } finally {
        conn.close();
      }
    }),
  );
}
