/*
 * A small Hadoop IPC v9 + SASL/GSSAPI client (JDK javax.security.sasl) used only to self-test
 * OmTestServer. It logs in from an MIT ccache, negotiates like Hadoop's SaslRpcClient, sends the
 * connection context and OzoneManagerProtocol.submitRequest calls, and prints one JSON object
 * describing everything it saw. Script: JSON in env OZS3_OM_CLIENT (see om-test-client.ts).
 */
package ozs3.omtest;

import ozs3.common.Json;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.PrivilegedExceptionAction;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.security.auth.Subject;
import javax.security.auth.kerberos.KerberosPrincipal;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.LoginContext;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslClient;
import org.ietf.jgss.GSSContext;
import org.ietf.jgss.GSSManager;
import org.ietf.jgss.GSSName;
import org.ietf.jgss.MessageProp;
import org.ietf.jgss.Oid;
import org.apache.hadoop.ipc_.protobuf.IpcConnectionContextProtos.IpcConnectionContextProto;
import org.apache.hadoop.ipc_.protobuf.IpcConnectionContextProtos.UserInformationProto;
import org.apache.hadoop.ipc_.protobuf.ProtobufRpcEngineProtos.RequestHeaderProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcKindProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcRequestHeaderProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcResponseHeaderProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcSaslProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcSaslProto.SaslAuth;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcSaslProto.SaslState;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.GetS3SecretRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.OMRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.OMResponse;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.RevokeS3SecretRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.SetS3SecretRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.Type;

public final class OmTestClient {
  static final String OM_PROTOCOL = "org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol";

  final Map<String, Object> script;
  final Map<String, Object> result = new LinkedHashMap<>();
  final List<Object> responses = new ArrayList<>();
  final List<Object> saslStates = new ArrayList<>();
  Socket socket;
  DataInputStream in;
  OutputStream out;
  SaslClient sasl;
  /** Raw GSS-API mode: RFC 4752 done by hand, so any layer can be chosen (as a broken client would). */
  GSSContext gss;
  int gssLayer;
  boolean useWrap;
  final ByteArrayOutputStream unwrapped = new ByteArrayOutputStream();
  byte[] clientId;

  OmTestClient(Map<String, Object> script) {
    this.script = script;
    result.put("responses", responses);
    result.put("saslStates", saslStates);
  }

  static Subject login(String ccache, String principal) throws Exception {
    javax.security.auth.login.Configuration conf =
        new javax.security.auth.login.Configuration() {
          @Override
          public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
            Map<String, String> o = new HashMap<>();
            o.put("useTicketCache", "true");
            o.put("ticketCache", ccache);
            o.put("doNotPrompt", "true");
            o.put("refreshKrb5Config", "true");
            if (principal != null) o.put("principal", principal);
            return new AppConfigurationEntry[] {
              new AppConfigurationEntry("com.sun.security.auth.module.Krb5LoginModule",
                  AppConfigurationEntry.LoginModuleControlFlag.REQUIRED, o)
            };
          }
        };
    LoginContext lc = new LoginContext("ozs3-om-test-client", new Subject(), null, conf);
    lc.login();
    return lc.getSubject();
  }

  void run() throws Exception {
    String ccache = Json.str(script, "ccache", null);
    if (ccache != null && ccache.startsWith("FILE:")) ccache = ccache.substring(5);
    Subject subject = ccache == null ? new Subject() : login(ccache, Json.str(script, "principal", null));
    String me = null;
    for (KerberosPrincipal p : subject.getPrincipals(KerberosPrincipal.class)) me = p.getName();
    result.put("clientPrincipal", me);
    clientId = script.containsKey("clientId")
        ? HexFormat.of().parseHex(Json.str(script, "clientId", ""))
        : randomBytes(16);
    result.put("clientId", HexFormat.of().formatHex(clientId));

    socket = new Socket();
    socket.connect(new InetSocketAddress(Json.str(script, "host", "127.0.0.1"), (int) Json.num(script, "port", 0)), 5000);
    socket.setTcpNoDelay(true);
    socket.setSoTimeout((int) Json.num(script, "readTimeoutMs", 5000));
    in = new DataInputStream(socket.getInputStream());
    out = socket.getOutputStream();

    Map<String, Object> hdr = Json.obj(script, "header");
    byte[] magic = Json.str(hdr, "magic", "hrpc").getBytes(StandardCharsets.ISO_8859_1);
    int version = (int) Json.num(hdr, "version", 9);
    int auth = (int) Json.num(hdr, "auth", -33);
    ByteArrayOutputStream h = new ByteArrayOutputStream();
    h.write(magic);
    h.write(version);
    h.write((int) Json.num(hdr, "serviceClass", 0));
    h.write(auth);
    out.write(h.toByteArray());
    out.flush();
    if (!Arrays.equals(magic, "hrpc".getBytes(StandardCharsets.ISO_8859_1)) || version != 9 || auth != -33) {
      // Not a SASL client: report what the server says, then stop.
      rawResponses();
      return;
    }

    Subject.doAs(subject, (PrivilegedExceptionAction<Void>) () -> {
      saslConnect();
      return null;
    });
    if (result.containsKey("fatal")) return;
    String qop = gss != null
        ? (gssLayer == 4 ? "auth-conf" : gssLayer == 2 ? "auth-int" : "auth")
        : (String) sasl.getNegotiatedProperty(Sasl.QOP);
    result.put("qop", qop);
    useWrap = qop != null && !"auth".equalsIgnoreCase(qop);
    result.put("wrapped", useWrap);

    List<byte[]> pending = new ArrayList<>();
    if (!Json.bool(script, "skipContext", false)) pending.add(contextFrame(me));
    if (Json.bool(script, "ping", false)) {
      pending.add(frame(requestHeader(-4, -1), null, null));
    }
    if (Json.bool(script, "garbageWrap", false)) {
      writeRawSasl(RpcSaslProto.newBuilder().setState(SaslState.WRAP).setToken(ByteString.copyFrom(randomBytes(40))).build());
    }
    List<Object> calls = Json.list(script, "calls");
    boolean pipeline = Json.bool(script, "pipeline", false);
    int nextCallId = (int) Json.num(script, "firstCallId", 0);
    List<Integer> sent = new ArrayList<>();
    for (Object o : calls) {
      @SuppressWarnings("unchecked")
      Map<String, Object> c = (Map<String, Object>) o;
      int callId = c.containsKey("callId") ? (int) Json.num(c, "callId", 0) : nextCallId++;
      pending.add(callFrame(c, callId));
      sent.add(callId);
      if (!pipeline) {
        send(pending);
        pending.clear();
        readOne();
        if (result.containsKey("fatal") || result.containsKey("error")) return;
      }
    }
    if (pipeline) {
      send(pending);
      pending.clear();
      for (int k = 0; k < sent.size(); k++) {
        readOne();
        if (result.containsKey("fatal") || result.containsKey("error")) return;
      }
    } else if (!pending.isEmpty()) {
      send(pending);
    }
    if (Json.bool(script, "readUntilClose", false)) {
      try {
        readOne();
      } catch (Exception e) {
        // expected: closed
      }
    }
  }

  /** SaslRpcClient.saslConnect. */
  void saslConnect() throws Exception {
    writeRawSasl(RpcSaslProto.newBuilder().setState(SaslState.NEGOTIATE).build());
    String clientQop = Json.str(script, "qop", "auth-conf,auth-int,auth");
    while (true) {
      byte[] f = readFrame();
      Buf b = new Buf(f);
      RpcResponseHeaderProto header = b.read(RpcResponseHeaderProto.parser());
      if (header.getStatus() != RpcResponseHeaderProto.RpcStatusProto.SUCCESS) {
        result.put("fatal", headerJson(header));
        return;
      }
      if (header.getCallId() != -33) throw new IOException("Non-SASL response during negotiation");
      RpcSaslProto msg = b.read(RpcSaslProto.parser());
      saslStates.add(msg.getState().name());
      RpcSaslProto.Builder reply = null;
      switch (msg.getState()) {
        case NEGOTIATE: {
          List<Object> auths = new ArrayList<>();
          SaslAuth krb = null;
          for (SaslAuth a : msg.getAuthsList()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("method", a.getMethod());
            m.put("mechanism", a.getMechanism());
            m.put("protocol", a.hasProtocol() ? a.getProtocol() : null);
            m.put("serverId", a.hasServerId() ? a.getServerId() : null);
            m.put("challenge", a.hasChallenge() ? a.getChallenge().toString(StandardCharsets.ISO_8859_1) : null);
            auths.add(m);
            if (a.getMethod().equals("KERBEROS") && a.getMechanism().equals("GSSAPI")) krb = a;
          }
          result.put("auths", auths);
          String method = Json.str(script, "authMethod", "KERBEROS");
          if (method.equals("TOKEN")) {
            SaslAuth tok = msg.getAuths(0).toBuilder().clearChallenge().build();
            reply = RpcSaslProto.newBuilder().setState(SaslState.INITIATE).setToken(ByteString.copyFromUtf8("x")).addAuths(tok);
            break;
          }
          if (krb == null) throw new IOException("server offers no KERBEROS");
          if (script.containsKey("gss")) {
            GSSManager mgr = GSSManager.getInstance();
            GSSName service = mgr.createName(krb.getProtocol() + "@" + krb.getServerId(), GSSName.NT_HOSTBASED_SERVICE);
            gss = mgr.createContext(service, new Oid("1.2.840.113554.1.2.2"), null, GSSContext.DEFAULT_LIFETIME);
            gss.requestMutualAuth(true);
            gss.requestConf(true);
            gss.requestInteg(true);
            byte[] token = gss.initSecContext(new byte[0], 0, 0);
            reply = RpcSaslProto.newBuilder().setState(SaslState.INITIATE).setToken(ByteString.copyFrom(token)).addAuths(krb);
            break;
          }
          Map<String, Object> props = new HashMap<>();
          props.put(Sasl.QOP, clientQop);
          sasl = Sasl.createSaslClient(new String[] {"GSSAPI"}, null, krb.getProtocol(), krb.getServerId(), props, null);
          byte[] token = sasl.hasInitialResponse() ? sasl.evaluateChallenge(new byte[0]) : new byte[0];
          reply = RpcSaslProto.newBuilder().setState(SaslState.INITIATE).setToken(ByteString.copyFrom(token)).addAuths(krb);
          break;
        }
        case CHALLENGE: {
          if (gss != null) {
            byte[] in = msg.getToken().toByteArray();
            byte[] outToken;
            if (!gss.isEstablished()) {
              outToken = gss.initSecContext(in, 0, in.length);
              if (outToken == null) outToken = new byte[0];
            } else {
              // RFC 4752: the server's wrapped offer (layer bitmask, max size); answer with our choice
              byte[] offer = gss.unwrap(in, 0, in.length, new MessageProp(0, false));
              result.put("offeredLayers", offer[0] & 0xff);
              Map<String, Object> g = Json.obj(script, "gss");
              gssLayer = (int) Json.num(g, "layer", 1);
              byte[] authz = Json.str(g, "authzid", "").getBytes(StandardCharsets.UTF_8);
              byte[] choice = new byte[4 + authz.length];
              choice[0] = (byte) gssLayer;
              choice[1] = (byte) 0x01; // 65536
              System.arraycopy(authz, 0, choice, 4, authz.length);
              outToken = gss.wrap(choice, 0, choice.length, new MessageProp(0, false));
            }
            reply = RpcSaslProto.newBuilder().setState(SaslState.RESPONSE).setToken(ByteString.copyFrom(outToken));
            break;
          }
          byte[] token = sasl.evaluateChallenge(msg.getToken().toByteArray());
          reply = RpcSaslProto.newBuilder().setState(SaslState.RESPONSE);
          if (token != null) reply.setToken(ByteString.copyFrom(token));
          break;
        }
        case SUCCESS: {
          if (gss != null) return;
          if (msg.hasToken()) sasl.evaluateChallenge(msg.getToken().toByteArray());
          if (!sasl.isComplete()) throw new IOException("Client is out of sync with server");
          return;
        }
        default:
          throw new IOException("unexpected SASL state " + msg.getState());
      }
      writeRawSasl(reply.build());
    }
  }

  RpcRequestHeaderProto requestHeader(int callId, int retry) {
    return RpcRequestHeaderProto.newBuilder()
        .setRpcKind(RpcKindProto.RPC_PROTOCOL_BUFFER)
        .setRpcOp(RpcRequestHeaderProto.OperationProto.RPC_FINAL_PACKET)
        .setCallId(callId)
        .setClientId(ByteString.copyFrom(callId == -33 ? new byte[0] : clientId))
        .setRetryCount(retry)
        .build();
  }

  byte[] contextFrame(String me) {
    Map<String, Object> ctx = Json.obj(script, "context");
    IpcConnectionContextProto.Builder b = IpcConnectionContextProto.newBuilder();
    if (!ctx.containsKey("protocol")) b.setProtocol(OM_PROTOCOL);
    else if (ctx.get("protocol") != null) b.setProtocol(ctx.get("protocol").toString());
    if (!ctx.containsKey("effectiveUser")) {
      b.setUserInfo(UserInformationProto.newBuilder().setEffectiveUser(me));
    } else if (ctx.get("effectiveUser") != null) {
      b.setUserInfo(UserInformationProto.newBuilder().setEffectiveUser(ctx.get("effectiveUser").toString()));
    }
    return frame(requestHeader(-3, -1), b.build(), null);
  }

  byte[] callFrame(Map<String, Object> c, int callId) {
    String op = Json.str(c, "op", "get");
    OMRequest.Builder r = OMRequest.newBuilder().setClientId(Json.str(c, "omClientId", "ozs3-test-" + callId));
    if (c.containsKey("traceID")) r.setTraceID(Json.str(c, "traceID", ""));
    String accessId = Json.str(c, "accessId", "");
    switch (op) {
      case "get": {
        GetS3SecretRequest.Builder g = GetS3SecretRequest.newBuilder().setKerberosID(accessId);
        if (c.containsKey("createIfNotExist")) g.setCreateIfNotExist(Json.bool(c, "createIfNotExist", true));
        r.setCmdType(Type.GetS3Secret).setGetS3SecretRequest(g);
        break;
      }
      case "revoke":
        r.setCmdType(Type.RevokeS3Secret).setRevokeS3SecretRequest(RevokeS3SecretRequest.newBuilder().setKerberosID(accessId));
        break;
      case "set":
        r.setCmdType(Type.SetS3Secret)
            .setSetS3SecretRequest(SetS3SecretRequest.newBuilder().setAccessId(accessId).setSecretKey(Json.str(c, "secret", "")));
        break;
      case "serviceList":
        r.setCmdType(Type.ServiceList);
        break;
      default:
        throw new IllegalArgumentException("op " + op);
    }
    RequestHeaderProto rh = RequestHeaderProto.newBuilder()
        .setMethodName(Json.str(c, "methodName", "submitRequest"))
        .setDeclaringClassProtocolName(Json.str(c, "declaringClassProtocolName", OM_PROTOCOL))
        .setClientProtocolVersion(Json.num(c, "clientProtocolVersion", 1))
        .build();
    Message payload = Json.bool(c, "omitClientId", false) ? r.buildPartial().toBuilder().clearClientId().buildPartial() : r.build();
    return frame(requestHeader(callId, (int) Json.num(c, "retryCount", 0)), rh, payload);
  }

  /** Writes frames; with a security layer, wraps them as the script says (Hadoop: per flush). */
  void send(List<byte[]> frames) throws Exception {
    if (!useWrap || Json.bool(script, "plaintextAfterLayer", false)) {
      for (byte[] f : frames) out.write(f);
      out.flush();
      return;
    }
    String mode = Json.str(script, "tokenMode", "per-frame");
    List<byte[]> chunks = new ArrayList<>();
    if (mode.equals("coalesce")) {
      ByteArrayOutputStream all = new ByteArrayOutputStream();
      for (byte[] f : frames) all.write(f);
      chunks.add(all.toByteArray());
    } else if (mode.equals("split")) {
      for (byte[] f : frames) {
        int half = Math.max(1, f.length / 2);
        chunks.add(Arrays.copyOfRange(f, 0, half));
        chunks.add(Arrays.copyOfRange(f, half, f.length));
      }
    } else {
      chunks.addAll(frames);
    }
    for (byte[] c : chunks) {
      byte[] token = wrap(c);
      writeRawSasl(RpcSaslProto.newBuilder().setState(SaslState.WRAP).setToken(ByteString.copyFrom(token)).build());
    }
  }

  /** Wraps with the negotiated layer; raw GSS mode may force confidentiality on or off ("gss.conf"). */
  byte[] wrap(byte[] c) throws Exception {
    if (gss == null) return sasl.wrap(c, 0, c.length);
    Map<String, Object> g = Json.obj(script, "gss");
    boolean conf = Json.bool(g, "conf", gssLayer == 4);
    return gss.wrap(c, 0, c.length, new MessageProp(0, conf));
  }

  void writeRawSasl(RpcSaslProto m) throws IOException {
    out.write(frame(requestHeader(-33, -1), m, null));
    out.flush();
  }

  /** Reads one answer (unwrapping as needed) and records it. */
  void readOne() throws Exception {
    byte[] f;
    try {
      f = nextInnerFrame();
    } catch (SocketTimeoutException e) {
      result.put("error", "timeout");
      return;
    } catch (EOFException e) {
      result.put("error", "closed");
      result.put("closed", true);
      return;
    } catch (IOException e) {
      result.put("error", e.toString());
      result.put("closed", true);
      return;
    }
    Buf b = new Buf(f);
    RpcResponseHeaderProto header = b.read(RpcResponseHeaderProto.parser());
    Map<String, Object> r = headerJson(header);
    if (header.getStatus() == RpcResponseHeaderProto.RpcStatusProto.SUCCESS && b.remaining() > 0) {
      OMResponse om = b.read(OMResponse.parser());
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("cmdType", om.getCmdType().name());
      m.put("status", om.getStatus().name());
      m.put("success", om.hasSuccess() ? om.getSuccess() : null);
      m.put("message", om.hasMessage() ? om.getMessage() : null);
      m.put("traceID", om.hasTraceID() ? om.getTraceID() : null);
      m.put("leaderOMNodeId", om.hasLeaderOMNodeId() ? om.getLeaderOMNodeId() : null);
      if (om.hasGetS3SecretResponse()) {
        m.put("kerberosID", om.getGetS3SecretResponse().getS3Secret().getKerberosID());
        m.put("awsSecret", om.getGetS3SecretResponse().getS3Secret().getAwsSecret());
      }
      if (om.hasSetS3SecretResponse()) {
        m.put("accessId", om.getSetS3SecretResponse().getAccessId());
        m.put("secretKey", om.getSetS3SecretResponse().getSecretKey());
      }
      r.put("om", m);
    }
    responses.add(r);
    if (header.getStatus() == RpcResponseHeaderProto.RpcStatusProto.FATAL) result.put("fatal", r);
  }

  Map<String, Object> headerJson(RpcResponseHeaderProto h) {
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("callId", h.getCallId());
    r.put("status", h.getStatus().name());
    r.put("serverIpcVersionNum", h.hasServerIpcVersionNum() ? h.getServerIpcVersionNum() : null);
    r.put("clientId", h.hasClientId() ? HexFormat.of().formatHex(h.getClientId().toByteArray()) : null);
    r.put("retryCount", h.hasRetryCount() ? h.getRetryCount() : null);
    if (h.hasExceptionClassName()) r.put("exceptionClassName", h.getExceptionClassName());
    if (h.hasErrorMsg()) r.put("errorMsg", h.getErrorMsg());
    if (h.hasErrorDetail()) r.put("errorDetail", h.getErrorDetail().name());
    return r;
  }

  /** The next frame of the RPC stream, through SaslRpcClient.WrappedInputStream when wrapped. */
  byte[] nextInnerFrame() throws Exception {
    if (!useWrap) return readFrame();
    while (true) {
      byte[] pending = unwrapped.toByteArray();
      if (pending.length >= 4) {
        int len = ((pending[0] & 0xff) << 24) | ((pending[1] & 0xff) << 16) | ((pending[2] & 0xff) << 8) | (pending[3] & 0xff);
        if (pending.length >= 4 + len) {
          unwrapped.reset();
          unwrapped.write(pending, 4 + len, pending.length - 4 - len);
          return Arrays.copyOfRange(pending, 4, 4 + len);
        }
      }
      byte[] outer = readFrame();
      Buf b = new Buf(outer);
      RpcResponseHeaderProto h = b.read(RpcResponseHeaderProto.parser());
      if (h.getCallId() != -33) throw new IOException("Server sent non-wrapped response");
      RpcSaslProto m = b.read(RpcSaslProto.parser());
      if (m.getState() != SaslState.WRAP) throw new IOException("Server sent non-wrapped response");
      byte[] t = m.getToken().toByteArray();
      unwrapped.write(gss != null ? gss.unwrap(t, 0, t.length, new MessageProp(0, false)) : sasl.unwrap(t, 0, t.length));
      result.merge("wrapTokensIn", 1L, (a, c) -> (Long) a + (Long) c);
    }
  }

  byte[] readFrame() throws IOException {
    int len = in.readInt();
    if (len <= 0 || len > 128 * 1024 * 1024) throw new IOException("bad frame length " + len);
    byte[] f = new byte[len];
    in.readFully(f);
    return f;
  }

  /** After a non-SASL connection header: whatever the server sends, until it closes. */
  void rawResponses() throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    byte[] b = new byte[4096];
    try {
      int n;
      while ((n = socket.getInputStream().read(b)) >= 0) all.write(b, 0, n);
      result.put("closed", true);
    } catch (SocketTimeoutException e) {
      result.put("error", "timeout");
    }
    byte[] bytes = all.toByteArray();
    result.put("rawText", new String(bytes, StandardCharsets.ISO_8859_1));
    result.put("rawHex", HexFormat.of().formatHex(bytes));
    if (bytes.length > 4) {
      try {
        int len = ((bytes[0] & 0xff) << 24) | ((bytes[1] & 0xff) << 16) | ((bytes[2] & 0xff) << 8) | (bytes[3] & 0xff);
        if (len == bytes.length - 4) {
          RpcResponseHeaderProto h = new Buf(Arrays.copyOfRange(bytes, 4, bytes.length)).read(RpcResponseHeaderProto.parser());
          Map<String, Object> r = headerJson(h);
          responses.add(r);
          if (h.getStatus() == RpcResponseHeaderProto.RpcStatusProto.FATAL) result.put("fatal", r);
        }
      } catch (IOException e) {
        // not a protobuf frame
      }
    }
  }

  static byte[] frame(Message header, Message body, Message payload) {
    int length = delimited(header) + (body != null ? delimited(body) : 0) + (payload != null ? delimited(payload) : 0);
    byte[] buf = new byte[length + 4];
    buf[0] = (byte) (length >>> 24);
    buf[1] = (byte) (length >>> 16);
    buf[2] = (byte) (length >>> 8);
    buf[3] = (byte) length;
    CodedOutputStream cos = CodedOutputStream.newInstance(buf, 4, length);
    try {
      for (Message m : new Message[] {header, body, payload}) {
        if (m == null) continue;
        cos.writeUInt32NoTag(m.getSerializedSize());
        m.writeTo(cos);
      }
      cos.checkNoSpaceLeft();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return buf;
  }

  static int delimited(Message m) {
    int n = m.getSerializedSize();
    return n + CodedOutputStream.computeUInt32SizeNoTag(n);
  }

  static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    new SecureRandom().nextBytes(b);
    return b;
  }

  static final class Buf {
    final byte[] a;
    int pos;

    Buf(byte[] a) {
      this.a = a;
    }

    <T extends Message> T read(Parser<T> parser) throws IOException {
      CodedInputStream cis = CodedInputStream.newInstance(a, pos, a.length - pos);
      try {
        cis.pushLimit(cis.readRawVarint32());
        T m = parser.parseFrom(cis);
        cis.checkLastTagWas(0);
        return m;
      } finally {
        pos += cis.getTotalBytesRead();
      }
    }

    int remaining() {
      return a.length - pos;
    }
  }

  public static void main(String[] args) throws Exception {
    String text = System.getenv("OZS3_OM_CLIENT");
    if (text == null) throw new IllegalArgumentException("OZS3_OM_CLIENT is not set");
    OmTestClient c = new OmTestClient(Json.parseObject(text));
    try {
      c.run();
    } catch (Exception e) {
      if (e instanceof java.net.SocketException || e instanceof EOFException) c.result.put("closed", true);
      StringWriter sw = new StringWriter();
      e.printStackTrace(new PrintWriter(sw));
      c.result.put("error", e.toString());
      c.result.put("stack", sw.toString());
    } finally {
      if (c.socket != null) c.socket.close();
    }
    System.out.println(Json.write(c.result));
    System.out.flush();
    System.exit(0);
  }
}
