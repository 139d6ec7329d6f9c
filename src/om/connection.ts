/**
 * One Hadoop RPC connection to one OM (hadoop-common ipc/Client.java, security/SaslRpcClient.java):
 * TCP, the connection header, SASL GSSAPI with the RFC 4752 layer this module negotiates, the
 * connection context, then calls multiplexed by call id (many in flight; answers in any order).
 * With integrity or privacy every frame after SASL, both ways, is an RpcSaslProto WRAP: frames are
 * wrapped and written synchronously, in order, so wrap-token sequence numbers match the wire, and
 * no call is ever written in plaintext once a layer was agreed.
 */
import { connect, type Socket } from 'node:net';
import { AuthError, NetworkError, Ozs3Error, ResponseError, sanitizeText } from '../errors.js';
import { OmRemoteError, saslFailure, withTicketTypes } from './answers.js';
import { FrameReader, PING_CALL_ID, SASL_CALL_ID, connectionHeader, malformedFrame } from './frames.js';
import { GSS_C_CONF_FLAG, GSS_C_INTEG_FLAG, GSS_C_MUTUAL_FLAG, type Gss, type GssContext } from './gssapi.js';
import {
  RpcStatus,
  SaslState,
  callFrame,
  connectionContextFrame,
  hasToken,
  parseAnswer,
  parseOmResponse,
  parseSasl,
  saslFrame,
  type Answer,
  type OMRequest,
  type OMResponse,
  type RpcSaslProto,
  type RpcSaslProto_SaslAuth,
} from './ipc.js';
import { chooseLayer, layerChoice, parseLayerOffer, wraps, type Protection } from './layers.js';
import { checkAdvertised, gssTarget, principalText, type ServicePrincipal } from './principal.js';

export interface ConnectionOptions {
  host: string;
  port: number;
  nodeId?: string | undefined;
  principal: ServicePrincipal;
  /** Layers hadoop.rpc.protection permits; undefined: whatever the OM requires. */
  protection?: readonly Protection[] | undefined;
  /** This client's 16-byte id (Hadoop's ClientId), the same on every connection of a run. */
  clientId: Uint8Array;
  gss: Gss;
  /** `--principal`, and the keytab, for the initiator credential and error wording. */
  initiator?: string | undefined;
  keytab?: string | undefined;
  /** Monotonic ms by which connect + SASL + connection context must be done. */
  deadline: number;
  /** The user's --timeout, for wording only. */
  timeoutMs: number;
  now: () => number;
  trace?: ((line: string) => void) | undefined;
}

/** What the handshake established (for --verbose and `ozs3 doctor`). */
export interface HandshakeFacts {
  address: string;
  nodeId?: string | undefined;
  connectMs?: number | undefined;
  handshakeMs?: number | undefined;
  /** The server's SASL auths in its order, e.g. ['TOKEN/DIGEST-MD5', 'KERBEROS/GSSAPI']. */
  auths: string[];
  /** `protocol/serverId` of the KERBEROS auth. */
  advertised?: string | undefined;
  servicePrincipal: string;
  principalMatched?: boolean | undefined;
  offered?: Protection[] | undefined;
  protection?: Protection | undefined;
  caller?: string | undefined;
}

export interface CallSpec {
  callId: number;
  retryCount: number;
  request: OMRequest;
}

interface PendingCall {
  resolve: (response: OMResponse) => void;
  reject: (error: Ozs3Error) => void;
  timer: NodeJS.Timeout;
}

const MAX_SASL_ROUNDS = 12;
const EMPTY = new Uint8Array(0);

export class OmConnection {
  readonly facts: HandshakeFacts;
  private readonly address: string;
  private socket: Socket | undefined;
  private readonly reader: FrameReader;
  /** The unwrapped byte stream: one wrap may hold part of a frame, or several (Server.unwrapPacketAndProcessRpcs). */
  private inner: FrameReader | undefined;
  private ctx: GssContext | undefined;
  private stepping = false;
  private layer: Protection | undefined;
  /** Largest plaintext chunk whose wrap fits the OM's max buffer. */
  private maxChunk = 0;
  private handshaking = true;
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (frame: Buffer) => void; reject: (error: Ozs3Error) => void } | undefined;
  private readonly pending = new Map<number, PendingCall>();
  private failure: Ozs3Error | undefined;
  private closedByUs = false;
  /** Rejects establish() at once when the connection fails (deadline, socket error) mid-handshake. */
  private onFailure: ((error: Ozs3Error) => void) | undefined;

  private constructor(private readonly opts: ConnectionOptions) {
    this.address = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
    this.reader = new FrameReader(`the OM at ${this.address}`);
    this.facts = {
      address: this.address,
      nodeId: opts.nodeId,
      auths: [],
      servicePrincipal: principalText(opts.principal),
    };
  }

  /** Connects, authenticates and sends the connection context, all before `opts.deadline`. */
  static async open(opts: ConnectionOptions): Promise<OmConnection> {
    const conn = new OmConnection(opts);
    await conn.establish();
    return conn;
  }

  /** A connection not yet started: `establish()` it; its facts stay readable if that fails. */
  static create(opts: ConnectionOptions): OmConnection {
    return new OmConnection(opts);
  }

  /** Open, authenticated and not failed: new calls may go on it. */
  get usable(): boolean {
    return !this.handshaking && this.failure === undefined;
  }

  /** The negotiated layer: authentication (none), integrity or privacy. */
  get protection(): Protection | undefined {
    return this.layer;
  }

  /**
   * Sends one call and waits for its answer until `deadline`. `onWritten` runs once the request is
   * handed to the socket: from then on a lost answer means the OM may have acted on it.
   */
  call(spec: CallSpec, deadline: number, onWritten?: () => void): Promise<OMResponse> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending.has(spec.callId)) {
      return Promise.reject(new ResponseError('INTERNAL', `internal: call id ${spec.callId} is already in flight`));
    }
    return new Promise<OMResponse>((resolve, reject) => {
      const wait = Math.max(1, Math.round(deadline - this.opts.now()));
      const timer = setTimeout(() => {
        this.pending.delete(spec.callId);
        this.trace(`rpc: call ${spec.callId} got no answer within the deadline`);
        reject(this.timeoutError('answer'));
      }, wait);
      this.pending.set(spec.callId, { resolve, reject, timer });
      try {
        this.send(callFrame(spec.callId, this.opts.clientId, spec.retryCount, spec.request));
      } catch (error) {
        this.fail(asOzs3Error(error));
        return;
      }
      onWritten?.();
    });
  }

  /** Ends the connection; calls still in flight fail with CLOSED. */
  close(): void {
    this.closedByUs = true;
    // What was written still goes out (end, then destroy once flushed); nothing more is read.
    this.socket?.destroySoon();
    this.fail(new NetworkError('CLOSED', `the connection to the OM at ${this.address} was closed by ozs3`));
    this.disposeContext();
  }

  async establish(): Promise<void> {
    const { opts } = this;
    const started = opts.now();
    const failed = new Promise<never>((_, reject) => {
      this.onFailure = reject;
    });
    failed.catch(() => {});
    const remaining = Math.max(1, Math.round(opts.deadline - started));
    const timer = setTimeout(() => {
      this.fail(this.timeoutError(this.socket?.connecting === false ? 'handshake' : 'connect'));
    }, remaining);
    try {
      this.trace(`om: connecting to ${this.address}${opts.nodeId ? ` (node ${opts.nodeId})` : ''}`);
      await Promise.race([this.connectSocket(started), failed]);
      await Promise.race([this.negotiate(), failed]);
      this.facts.handshakeMs = Math.round(opts.now() - started);
      this.trace(`om: ready in ${this.facts.handshakeMs} ms`);
    } catch (error) {
      // What the handshake itself raised (a FATAL's SaslException, a principal mismatch) says more
      // than the connection closing right after it; a deadline or socket failure arrives as itself.
      const failure = asOzs3Error(error);
      this.fail(failure);
      if (!this.stepping) this.disposeContext();
      // With a ticket cache, the service ticket's types can tell an RC4 refusal apart from the other
      // causes of "GSS initiate failed". A keytab login's MEMORY cache is out of klist's reach: no
      // klist run for it.
      throw opts.keytab ? failure : await withTicketTypes(failure, this.facts.servicePrincipal, process.env);
    } finally {
      clearTimeout(timer);
      this.onFailure = undefined;
    }
  }

  private connectSocket(started: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const socket = connect({ host: this.opts.host, port: this.opts.port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.once('connect', () => {
        this.facts.connectMs = Math.round(this.opts.now() - started);
        this.trace(`om: TCP connected in ${this.facts.connectMs} ms`);
        resolve();
      });
      socket.on('data', (data: Buffer) => this.onData(data));
      socket.on('error', (error) => this.fail(this.networkError(error)));
      socket.on('close', () => this.fail(this.closedError()));
    });
  }

  private onData(data: Buffer): void {
    if (this.failure) return;
    try {
      for (const frame of this.reader.push(data)) {
        if (this.handshaking) this.enqueue(frame);
        else this.onFrame(frame);
      }
    } catch (error) {
      this.fail(asOzs3Error(error));
    }
  }

  private enqueue(frame: Buffer): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      waiter.resolve(frame);
    } else {
      this.queue.push(frame);
    }
  }

  private nextFrame(): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The next SASL message; an ERROR/FATAL answer here is the server refusing the handshake. */
  private async nextSasl(): Promise<RpcSaslProto> {
    const answer = parseAnswer(await this.nextFrame());
    if (answer.header.status !== RpcStatus.SUCCESS) {
      throw saslFailure(this.remoteError(answer), this.facts.servicePrincipal);
    }
    if (answer.callId !== SASL_CALL_ID)
      throw malformedFrame(`a non-SASL answer (call id ${answer.callId}) during SASL`);
    return parseSasl(answer.body);
  }

  private async negotiate(): Promise<void> {
    const { opts } = this;
    this.write(Buffer.concat([connectionHeader(), saslFrame(SaslState.NEGOTIATE)]));
    this.trace('sasl: > NEGOTIATE');
    let ctx: GssContext | undefined;
    for (let round = 0; ; round++) {
      if (round >= MAX_SASL_ROUNDS)
        throw new AuthError('OM_SASL_FAILED', `the SASL handshake with the OM at ${this.address} did not end`);
      const message = await this.nextSasl();
      const state = SaslState[message.state] ?? String(message.state);
      this.trace(`sasl: < ${state}`);
      if (message.state === SaslState.NEGOTIATE) {
        if (ctx) throw malformedFrame('a second SASL NEGOTIATE');
        const auth = this.pickKerberos(message);
        const target = gssTarget(opts.principal);
        this.trace(
          `sasl: service principal ${principalText(opts.principal)} (GSS ${target.targetType} name ${target.target})`,
        );
        ctx = await opts.gss.initiate({ ...target, initiator: opts.initiator, keytab: opts.keytab });
        this.ctx = ctx;
        const token = await this.step(ctx, undefined);
        const chosen = {
          method: auth.method,
          mechanism: auth.mechanism,
          protocol: auth.protocol,
          serverId: auth.serverId,
        };
        this.write(saslFrame(SaslState.INITIATE, token ?? EMPTY, chosen));
        this.trace('sasl: > INITIATE KERBEROS/GSSAPI (first Kerberos token)');
      } else if (message.state === SaslState.CHALLENGE) {
        if (!ctx) throw malformedFrame('a SASL CHALLENGE before NEGOTIATE');
        if (!hasToken(message)) throw malformedFrame('a SASL CHALLENGE without a token');
        this.write(saslFrame(SaslState.RESPONSE, await this.answerChallenge(ctx, message.token)));
        this.trace('sasl: > RESPONSE');
      } else if (message.state === SaslState.SUCCESS) {
        if (!ctx) {
          throw new AuthError(
            'OM_NOT_KERBEROS',
            `the OM at ${this.address} does not use Kerberos (it accepted the connection without authentication)`,
            {
              hint: 'S3 secrets need a secure Ozone cluster (ozone.security.enabled=true); check the OM address',
            },
          );
        }
        if (!ctx.established || this.layer === undefined) {
          throw new AuthError(
            'OM_SASL_OUT_OF_SYNC',
            `the OM at ${this.address} reported SASL success before the Kerberos handshake was complete`,
            {
              hint: 'the server may not be the OM it claims to be',
            },
          );
        }
        if (hasToken(message) && message.token.length > 0) throw malformedFrame('a token after SASL SUCCESS');
        break;
      } else {
        throw malformedFrame(`an unexpected SASL state ${state}`);
      }
    }
    this.facts.caller = ctx.initiatorName();
    this.trace(`sasl: authenticated as ${this.facts.caller}; security layer ${this.layer}`);
    this.handshaking = false;
    if (wraps(this.layer)) this.inner = new FrameReader(`the OM at ${this.address} (unwrapped)`);
    this.send(connectionContextFrame(opts.clientId, this.facts.caller));
    this.trace('rpc: > connection context (call id -3)');
    // Anything the server sent right after SUCCESS is ordinary traffic.
    for (const frame of this.queue.splice(0)) this.onFrame(frame);
  }

  /** The KERBEROS/GSSAPI auth of the server's list, its principal checked against ours. */
  private pickKerberos(message: RpcSaslProto): RpcSaslProto_SaslAuth {
    const { opts } = this;
    this.facts.auths = message.auths.map((a) => sanitizeText(`${a.method}/${a.mechanism}`, 60));
    this.trace(`sasl: the OM offers ${this.facts.auths.join(', ') || 'nothing'}`);
    const auth = message.auths.find((a) => a.method === 'KERBEROS' && a.mechanism === 'GSSAPI');
    if (!auth) {
      throw new AuthError(
        'OM_NO_KERBEROS',
        `the OM at ${this.address} does not offer Kerberos (it offers ${this.facts.auths.join(', ') || 'nothing'})`,
        { hint: 'check the OM address; an OM of a secure cluster offers KERBEROS/GSSAPI' },
      );
    }
    this.facts.advertised = sanitizeText(`${auth.protocol}/${auth.serverId}`, 120);
    this.facts.principalMatched = false;
    checkAdvertised(opts.principal, auth.protocol, auth.serverId, this.address);
    this.facts.principalMatched = true;
    this.trace(`sasl: the OM runs as ${this.facts.advertised}: matches ${principalText(opts.principal)}`);
    return auth;
  }

  private async step(ctx: GssContext, token: Uint8Array | undefined): Promise<Buffer | undefined> {
    this.stepping = true;
    try {
      return await ctx.step(token);
    } finally {
      this.stepping = false;
      // The deadline may have passed while the KDC was being asked.
      if (this.failure) this.disposeContext();
    }
  }

  /** A CHALLENGE: the GSS context's next step, or once it is up, the RFC 4752 layer offer. */
  private async answerChallenge(ctx: GssContext, token: Uint8Array): Promise<Uint8Array> {
    if (!ctx.established) {
      const reply = await this.step(ctx, token);
      if (ctx.established) {
        if ((ctx.grantedFlags & GSS_C_MUTUAL_FLAG) === 0) {
          throw new AuthError(
            'KRB_MUTUAL_AUTH_FAILED',
            `the OM at ${this.address} did not prove its identity (no mutual authentication)`,
          );
        }
        this.trace('sasl: Kerberos context established, the OM proved its identity (mutual authentication)');
      }
      return reply ?? EMPTY;
    }
    if (this.layer !== undefined) throw malformedFrame('a SASL CHALLENGE after the security layer was agreed');
    const offer = parseLayerOffer(ctx.unwrap(token).data);
    this.facts.offered = offer.offered;
    const layer = chooseLayer(offer, this.opts.protection);
    const needed = layer === 'privacy' ? GSS_C_CONF_FLAG : layer === 'integrity' ? GSS_C_INTEG_FLAG : 0;
    if ((ctx.grantedFlags & needed) !== needed) {
      throw new AuthError('OM_PROTECTION_MISMATCH', `Kerberos did not grant the ${layer} the OM requires`);
    }
    this.trace(
      `sasl: the OM offers ${offer.offered.join(', ')} (max message ${offer.maxBuffer} bytes); chose ${layer}`,
    );
    if (wraps(layer)) this.maxChunk = ctx.wrapSizeLimit(layer === 'privacy', offer.maxBuffer);
    if (wraps(layer) && this.maxChunk < 16) {
      throw new AuthError(
        'OM_SASL_LAYER_OFFER',
        `the OM's maximum message size (${offer.maxBuffer} bytes) leaves no room for data`,
      );
    }
    this.layer = layer;
    this.facts.protection = layer;
    return ctx.wrap(layerChoice(layer), false);
  }

  /** A frame after SASL: a WRAP to unwrap when a layer is on, else an answer. */
  private onFrame(payload: Buffer): void {
    if (!this.inner) {
      this.dispatch(parseAnswer(payload));
      return;
    }
    const outer = parseAnswer(payload);
    if (outer.header.status === RpcStatus.FATAL) {
      // The server wraps its errors too; a plain FATAL can only end the connection, so take it.
      this.dispatch(outer);
      return;
    }
    if (outer.callId !== SASL_CALL_ID) {
      throw new ResponseError(
        'OM_NOT_WRAPPED',
        `the OM at ${this.address} sent an unprotected answer on a ${this.layer} connection`,
        {
          hint: 'something between ozs3 and the OM altered the connection',
        },
      );
    }
    const message = parseSasl(outer.body);
    if (message.state !== SaslState.WRAP || !hasToken(message))
      throw malformedFrame('a SASL message other than WRAP after SUCCESS');
    const { data, confidential } = this.ctx!.unwrap(message.token);
    if (this.layer === 'privacy' && !confidential) {
      throw new ResponseError(
        'OM_NOT_ENCRYPTED',
        `the OM at ${this.address} sent an unencrypted answer on a privacy connection`,
      );
    }
    for (const frame of this.inner.push(data)) this.dispatch(parseAnswer(frame));
  }

  private dispatch(answer: Answer): void {
    const { header, callId } = answer;
    if (callId === PING_CALL_ID) return;
    const ours = this.opts.clientId;
    if (header.clientId.length > 0 && !Buffer.from(header.clientId).equals(Buffer.from(ours))) {
      throw malformedFrame('an answer for another client id');
    }
    if (header.status === RpcStatus.FATAL) {
      // FATAL ends the connection (Client.receiveRpcResponse: markClosed).
      const error = this.remoteError(answer, true);
      this.trace(`rpc: < FATAL ${error.exceptionClass}`);
      this.fail(error);
      return;
    }
    const call = this.pending.get(callId);
    if (!call) {
      this.trace(`rpc: < answer for call id ${callId}, which is not waiting (late or unknown): ignored`);
      return;
    }
    this.pending.delete(callId);
    clearTimeout(call.timer);
    try {
      if (header.status === RpcStatus.SUCCESS) {
        call.resolve(parseOmResponse(answer.body));
      } else if (header.status === RpcStatus.ERROR) {
        if (answer.body !== undefined) throw malformedFrame('an error answer with a body');
        const error = this.remoteError(answer);
        this.trace(
          `rpc: < call ${callId} ERROR ${error.exceptionClass}: ${sanitizeText(error.remoteMessage.split('\n')[0] ?? '', 160)}`,
        );
        call.reject(error);
      } else {
        throw malformedFrame(`an answer with status ${String(header.status)}`);
      }
    } catch (error) {
      // The call is no longer pending, so the connection's failure would not reach it.
      call.reject(asOzs3Error(error));
      throw error;
    }
  }

  private remoteError(answer: Answer, fatal = answer.header.status === RpcStatus.FATAL): OmRemoteError {
    const { header } = answer;
    return new OmRemoteError(
      header.exceptionClassName || 'ServerDidNotSetExceptionClassName',
      header.errorMsg || 'ServerDidNotSetErrorMsg',
      fatal,
      this.address,
    );
  }

  /** Writes one plaintext frame, wrapped in chunks the OM's max buffer allows once a layer is on. */
  private send(frame: Buffer): void {
    if (!this.inner) {
      if (!this.handshaking && this.layer !== undefined && wraps(this.layer)) {
        throw new ResponseError('INTERNAL', 'internal: refusing to send plaintext on a protected connection');
      }
      this.write(frame);
      return;
    }
    const confidential = this.layer === 'privacy';
    for (let offset = 0; offset < frame.length; offset += this.maxChunk) {
      const token = this.ctx!.wrap(frame.subarray(offset, offset + this.maxChunk), confidential);
      this.write(saslFrame(SaslState.WRAP, token));
    }
  }

  private write(bytes: Buffer): void {
    if (this.failure || !this.socket) throw this.failure ?? this.closedError();
    this.socket.write(bytes);
  }

  private fail(error: Ozs3Error): void {
    if (this.failure) return;
    this.failure = error;
    if (!this.closedByUs) {
      this.trace(`om: connection to ${this.address} ended: ${error.message}`);
      this.socket?.destroy();
    }
    // Frames already received (a FATAL before the close) are read first: they explain the close.
    if (this.queue.length === 0 || error.code === 'TIMEOUT') this.onFailure?.(error);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
    for (const [id, call] of this.pending) {
      clearTimeout(call.timer);
      this.pending.delete(id);
      call.reject(error);
    }
    if (!this.handshaking && !this.stepping) this.disposeContext();
  }

  private disposeContext(): void {
    if (this.stepping) return;
    this.ctx?.dispose();
    this.ctx = undefined;
  }

  private timeoutError(phase: 'connect' | 'handshake' | 'answer'): NetworkError {
    const seconds = this.opts.timeoutMs / 1000;
    const what =
      phase === 'connect'
        ? `connecting to the OM at ${this.address} timed out`
        : phase === 'handshake'
          ? `the OM at ${this.address} did not complete the Hadoop RPC handshake in time`
          : `no answer from the OM at ${this.address} in time`;
    return new NetworkError('TIMEOUT', `${what} (deadline ${seconds} s)`, {
      hint:
        phase === 'answer'
          ? 'raise --timeout, or check the OM'
          : 'check the OM address and port (ozone.om.address, default 9862) and the network path',
    });
  }

  private closedError(): NetworkError {
    const when = this.handshaking ? ' during the handshake' : '';
    return new NetworkError('ECONNRESET', `the OM at ${this.address} closed the connection${when}`, {
      hint: this.handshaking
        ? 'the OM may have refused the Kerberos handshake or the security layer; see the OM log'
        : undefined,
    });
  }

  private networkError(error: Error & { code?: string }): Ozs3Error {
    const code = error.code ?? '';
    const cause = { cause: error };
    if (code === 'ECONNREFUSED') {
      return new NetworkError('ECONNREFUSED', `connection to the OM at ${this.address} refused`, {
        ...cause,
        hint: 'is the OzoneManager running, and is this its RPC port (ozone.om.address, default 9862)?',
      });
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new NetworkError('DNS', `cannot resolve the OM host ${this.opts.host} (${code})`, {
        ...cause,
        hint: 'check the OM host name (ozone.om.address) and DNS',
      });
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      return new NetworkError('ECONNRESET', `the connection to the OM at ${this.address} was reset`, cause);
    }
    return new NetworkError(
      code || 'NETWORK',
      `connection to the OM at ${this.address} failed: ${sanitizeText(error.message)}`,
      cause,
    );
  }

  private trace(line: string): void {
    this.opts.trace?.(line);
  }
}

export function asOzs3Error(error: unknown): Ozs3Error {
  if (error instanceof Ozs3Error) return error;
  return new ResponseError(
    'INTERNAL',
    `internal error on the OM connection: ${sanitizeText(error instanceof Error ? error.message : String(error))}`,
    {
      cause: error,
    },
  );
}
