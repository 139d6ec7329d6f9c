/*
 * An independent OzoneManager RPC test server for ozs3's tests: the server side of Hadoop IPC v9
 * (SASL/GSSAPI through the JDK, QOP auth / auth-int / auth-conf with wrapped frames both ways),
 * ProtobufRpcEngine calls of OzoneManagerProtocol.submitRequest, and Ozone's S3 secret semantics
 * (GetS3Secret, RevokeS3Secret, SetS3Secret), with HA roles, a retry cache and recording for tests.
 *
 * Behaviour follows Ozone's fork of the Hadoop IPC server (apache/ozone
 * hadoop-hdds/common/.../ipc_/Server.java, ProtobufRpcEngine.java, security_/SaslRpcServer.java)
 * and the OM request classes (S3GetSecretRequest, S3RevokeSecretRequest, OMSetSecretRequest,
 * S3SecretRequestHelper, OzoneManagerProtocolServerSideTranslatorPB, OMExecutionFlow,
 * OzoneManagerRatisServer, OMNotLeaderException). It shares no code with ozs3's client.
 *
 * Config: JSON in env OZS3_OM_CONFIG. Control: JSON lines on stdin ({"id":1,"op":"requests"}),
 * answers as JSON lines on stdout; the first stdout line is {"type":"ready",...}. EOF on stdin
 * ends the JVM, so the server never outlives the process that started it.
 */
package ozs3.omtest;

import ozs3.common.Json;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.PrivilegedActionException;
import java.security.PrivilegedExceptionAction;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import javax.security.auth.Subject;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.CallbackHandler;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.LoginContext;
import javax.security.sasl.AuthorizeCallback;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslException;
import javax.security.sasl.SaslServer;
import org.apache.hadoop.ipc_.protobuf.IpcConnectionContextProtos.IpcConnectionContextProto;
import org.apache.hadoop.ipc_.protobuf.ProtobufRpcEngineProtos.RequestHeaderProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcKindProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcRequestHeaderProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcResponseHeaderProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcResponseHeaderProto.RpcErrorCodeProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcResponseHeaderProto.RpcStatusProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcSaslProto;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcSaslProto.SaslAuth;
import org.apache.hadoop.ipc_.protobuf.RpcHeaderProtos.RpcSaslProto.SaslState;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.GetS3SecretRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.GetS3SecretResponse;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.OMRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.OMResponse;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.RevokeS3SecretRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.S3Secret;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.SetS3SecretRequest;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.SetS3SecretResponse;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.Status;
import org.apache.hadoop.ozone.protocol.proto.OzoneManagerProtocolProtos.UpdateGetS3SecretRequest;

public final class OmTestServer {
  // ---- constants (RpcConstants, Server.AuthProtocol, ProtobufRpcEngine, OzoneConsts) ----
  static final int CURRENT_VERSION = 9;
  static final int SASL_CALL_ID = -33;
  static final int AUTHORIZATION_FAILED_CALL_ID = -1;
  static final int CONNECTION_CONTEXT_CALL_ID = -3;
  static final int PING_CALL_ID = -4;
  static final int INVALID_RETRY_COUNT = -1;
  static final byte[] DUMMY_CLIENT_ID = new byte[0];
  static final String OM_PROTOCOL = "org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol";
  static final long OM_PROTOCOL_VERSION = 1;
  static final int S3_SECRET_KEY_MIN_LENGTH = 8;
  static final int DEFAULT_MAX_DATA_LENGTH = 128 * 1024 * 1024; // ipc.maximum.data.length
  static final String RECEIVED_HTTP_REQ_RESPONSE =
      "HTTP/1.1 404 Not Found\r\n"
          + "Content-type: text/plain\r\n\r\n"
          + "It looks like you are making an HTTP request to a Hadoop IPC port. "
          + "This is not the correct port for the web interface on this daemon.\r\n";

  // Exception class names as Ozone's OM puts them on the wire (its IPC server is the ipc_ fork).
  static final String RPC_SERVER_EXCEPTION = "org.apache.hadoop.ipc_.RpcServerException";
  static final String IPC_EXCEPTION = "org.apache.hadoop.ipc_.IpcException";
  static final String VERSION_MISMATCH = "org.apache.hadoop.ipc_.RPC$VersionMismatch";
  static final String NO_SUCH_PROTOCOL = "org.apache.hadoop.ipc_.RpcNoSuchProtocolException";
  static final String NO_SUCH_METHOD = "org.apache.hadoop.ipc_.RpcNoSuchMethodException";
  static final String ACCESS_CONTROL = "org.apache.hadoop.security.AccessControlException";
  static final String AUTHORIZATION = "org.apache.hadoop.security.authorize.AuthorizationException";
  static final String INVALID_TOKEN = "org.apache.hadoop.security.token.SecretManager$InvalidToken";
  static final String SASL_EXCEPTION = "javax.security.sasl.SaslException";
  static final String NOT_LEADER = "org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException";
  static final String NOT_READY = "org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException";

  // ---- configuration and state ----
  final String realm;
  final String principal;
  final String saslProtocol; // "om"
  final String saslServerId; // host part of the principal
  final Subject subject;
  final boolean tokenAuth;
  final boolean serviceAuthorization;
  final int maxDataLength;
  final boolean debug;
  volatile String defaultQop;
  volatile Set<String> admins;
  volatile Map<String, Long> delays;

  final Object storeLock = new Object();
  final Map<String, String> secrets = new LinkedHashMap<>(); // guarded by storeLock
  final Map<String, String> presetSecrets = new LinkedHashMap<>(); // guarded by storeLock
  /** Ratis retry cache stand-in, shared by all nodes: "clientIdHex:callId" → answer. */
  final ConcurrentHashMap<String, CompletableFuture<OMResponse>> retryCache = new ConcurrentHashMap<>();

  final List<Node> nodes = new ArrayList<>();
  final List<Map<String, Object>> requestLog = Collections.synchronizedList(new ArrayList<>());
  final List<Conn> connections = Collections.synchronizedList(new ArrayList<>());
  final AtomicInteger requestSeq = new AtomicInteger();
  final AtomicInteger connSeq = new AtomicInteger();
  final ExecutorService handlers =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "om-handler");
            t.setDaemon(true);
            return t;
          });
  final PrintStream stdout;
  final SecureRandom random = new SecureRandom();
  final long startNanos = System.nanoTime();

  OmTestServer(Map<String, Object> cfg, PrintStream stdout) throws Exception {
    this.stdout = stdout;
    this.realm = Json.str(cfg, "realm", "OZS3.TEST");
    String p = Json.str(cfg, "principal", "om/localhost");
    this.principal = p.contains("@") ? p : p + "@" + realm;
    // SaslRpcServer(KERBEROS): split the login user's full name on [/@], 3 parts, no auth_to_local.
    String[] parts = principal.split("[/@]", 3);
    this.saslProtocol = parts[0];
    this.saslServerId = parts.length < 2 ? "" : parts[1];
    this.tokenAuth = Json.bool(cfg, "tokenAuth", true);
    this.serviceAuthorization = Json.bool(cfg, "serviceAuthorization", true);
    this.maxDataLength = (int) Json.num(cfg, "maxDataLength", DEFAULT_MAX_DATA_LENGTH);
    this.debug = Json.bool(cfg, "debug", false);
    this.defaultQop = qopOf(cfg.get("protection"));
    applyOptions(cfg);
    for (Map.Entry<String, Object> e : Json.obj(cfg, "secrets").entrySet()) {
      secrets.put(e.getKey(), String.valueOf(e.getValue()));
    }
    for (Map.Entry<String, Object> e : Json.obj(cfg, "presetSecrets").entrySet()) {
      presetSecrets.put(e.getKey(), String.valueOf(e.getValue()));
    }
    this.subject = login(principal, Json.str(cfg, "keytab", null), debug);
    List<Object> nodeSpecs = Json.list(cfg, "nodes");
    if (nodeSpecs.isEmpty()) nodeSpecs.add(new LinkedHashMap<>(Map.of("nodeId", "om1")));
    for (Object o : nodeSpecs) {
      @SuppressWarnings("unchecked")
      Map<String, Object> n = (Map<String, Object>) o;
      Node node = new Node(n);
      nodes.add(node);
    }
  }

  @SuppressWarnings("unchecked")
  void applyOptions(Map<String, Object> o) {
    if (o.containsKey("admins")) {
      Set<String> a = new LinkedHashSet<>();
      for (Object x : Json.list(o, "admins")) a.add(String.valueOf(x));
      admins = a;
    } else if (admins == null) {
      admins = new LinkedHashSet<>();
    }
    if (o.containsKey("delays")) {
      Map<String, Long> d = new HashMap<>();
      for (Map.Entry<String, Object> e : Json.obj(o, "delays").entrySet()) {
        d.put(e.getKey(), ((Number) e.getValue()).longValue());
      }
      delays = d;
    } else if (delays == null) {
      delays = new HashMap<>();
    }
    if (o.containsKey("protection") && defaultQop != null) defaultQop = qopOf(o.get("protection"));
  }

  /** hadoop.rpc.protection (a value or a list) → javax.security.sasl.qop, as SaslPropertiesResolver. */
  static String qopOf(Object protection) {
    List<String> names = new ArrayList<>();
    if (protection == null) {
      names.add("authentication");
    } else if (protection instanceof List) {
      for (Object x : (List<?>) protection) names.add(String.valueOf(x));
    } else {
      for (String x : String.valueOf(protection).split(",")) if (!x.trim().isEmpty()) names.add(x.trim());
    }
    List<String> qops = new ArrayList<>();
    for (String n : names) {
      switch (n.toUpperCase(Locale.ROOT)) {
        case "AUTHENTICATION": qops.add("auth"); break;
        case "INTEGRITY": qops.add("auth-int"); break;
        case "PRIVACY": qops.add("auth-conf"); break;
        default: throw new IllegalArgumentException("hadoop.rpc.protection: unknown value " + n);
      }
    }
    return String.join(",", qops);
  }

  // ---- Kerberos login (programmatic JAAS, keytab, acceptor only) ----
  static Subject login(String principal, String keytab, boolean debug) throws Exception {
    if (keytab == null) throw new IllegalArgumentException("config: keytab is required");
    javax.security.auth.login.Configuration conf =
        new javax.security.auth.login.Configuration() {
          @Override
          public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
            Map<String, String> o = new HashMap<>();
            o.put("useKeyTab", "true");
            o.put("keyTab", keytab);
            o.put("principal", principal);
            o.put("storeKey", "true");
            o.put("isInitiator", "false");
            o.put("doNotPrompt", "true");
            o.put("refreshKrb5Config", "true");
            if (debug) o.put("debug", "true");
            return new AppConfigurationEntry[] {
              new AppConfigurationEntry(
                  "com.sun.security.auth.module.Krb5LoginModule",
                  AppConfigurationEntry.LoginModuleControlFlag.REQUIRED,
                  o)
            };
          }
        };
    LoginContext lc = new LoginContext("ozs3-om-test-server", new Subject(), null, conf);
    lc.login();
    return lc.getSubject();
  }

  // ---- nodes and roles ----
  static final class RoleState {
    final String role; // leader | follower | not-ready | silent | drop
    final boolean suggestedLeaderSet;
    final String suggestedLeader;
    final String suggestedLeaderAddress;
    final int notReadyCalls;
    final int dropAfterCalls;
    final String dropWhen; // before-processing | after-processing
    final int dropCount;
    final AtomicInteger calls = new AtomicInteger();
    final AtomicInteger notReadyAnswered = new AtomicInteger();
    final AtomicInteger dropped = new AtomicInteger();

    RoleState(String role, Map<String, Object> o) {
      switch (role) {
        case "leader": case "follower": case "not-ready": case "silent": case "drop": break;
        default: throw new IllegalArgumentException("unknown role " + role);
      }
      this.role = role;
      this.suggestedLeaderSet = o.containsKey("suggestedLeader");
      this.suggestedLeader = o.get("suggestedLeader") == null ? null : o.get("suggestedLeader").toString();
      this.suggestedLeaderAddress = Json.str(o, "suggestedLeaderAddress", null);
      this.notReadyCalls = (int) Json.num(o, "notReadyCalls", 1);
      this.dropAfterCalls = (int) Json.num(o, "dropAfterCalls", 0);
      this.dropWhen = Json.str(o, "dropWhen", "after-processing");
      if (!dropWhen.equals("before-processing") && !dropWhen.equals("after-processing")) {
        throw new IllegalArgumentException("dropWhen: before-processing or after-processing");
      }
      this.dropCount = (int) Json.num(o, "dropCount", 1);
    }

    /** Acts as the Raft leader (ready or not) for a follower's suggestion. */
    boolean leaderLike() {
      return role.equals("leader") || role.equals("not-ready") || role.equals("drop");
    }

    Map<String, Object> toJson() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("role", role);
      if (role.equals("follower") && suggestedLeaderSet) m.put("suggestedLeader", suggestedLeader);
      if (role.equals("not-ready")) {
        m.put("notReadyCalls", notReadyCalls);
        m.put("notReadyAnswered", notReadyAnswered.get());
      }
      if (role.equals("drop")) {
        m.put("dropAfterCalls", dropAfterCalls);
        m.put("dropWhen", dropWhen);
        m.put("dropCount", dropCount);
        m.put("dropped", dropped.get());
      }
      return m;
    }
  }

  final class Node {
    final String nodeId;
    final String host;
    final String qopOverride; // null: the server's protection
    final List<ServerSocket> listeners = new ArrayList<>();
    int port;
    volatile RoleState role;

    Node(Map<String, Object> spec) throws IOException {
      this.nodeId = Json.str(spec, "nodeId", "om1");
      this.host = Json.str(spec, "host", "localhost");
      this.qopOverride = spec.containsKey("protection") ? qopOf(spec.get("protection")) : null;
      this.role = new RoleState(Json.str(spec, "role", "leader"), Json.obj(spec, "roleOptions"));
      ServerSocket v4 = new ServerSocket();
      v4.setReuseAddress(true);
      v4.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), Json.num(spec, "port", 0) > 0 ? (int) Json.num(spec, "port", 0) : 0), 128);
      this.port = v4.getLocalPort();
      listeners.add(v4);
      if (Json.bool(spec, "ipv6Loopback", true)) {
        try {
          ServerSocket v6 = new ServerSocket();
          v6.setReuseAddress(true);
          v6.bind(new InetSocketAddress(InetAddress.getByName("::1"), port), 128);
          listeners.add(v6);
        } catch (IOException e) {
          // no IPv6 loopback here: fine
        }
      }
    }

    String qop() {
      return qopOverride != null ? qopOverride : defaultQop;
    }

    void start() {
      for (ServerSocket ss : listeners) {
        Thread t =
            new Thread(
                () -> {
                  while (!ss.isClosed()) {
                    try {
                      Socket s = ss.accept();
                      s.setTcpNoDelay(true);
                      s.setKeepAlive(true);
                      Conn c = new Conn(this, s);
                      connections.add(c);
                      Thread ct = new Thread(c, "om-conn-" + c.id);
                      ct.setDaemon(true);
                      ct.start();
                    } catch (IOException e) {
                      if (!ss.isClosed()) log("accept on " + nodeId + ": " + e);
                    }
                  }
                },
                "om-listener-" + nodeId);
        t.setDaemon(true);
        t.start();
      }
    }

    Map<String, Object> toJson() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("nodeId", nodeId);
      m.put("host", host);
      m.put("port", port);
      m.put("qop", qop());
      m.putAll(role.toJson());
      return m;
    }
  }

  Node node(String nodeId) {
    for (Node n : nodes) if (n.nodeId.equals(nodeId)) return n;
    throw new IllegalArgumentException("no node " + nodeId);
  }

  // ---- errors ----
  /** An RPC-level error answer (Server.setupResponse with ERROR or FATAL). */
  static final class RpcErr extends Exception {
    final RpcStatusProto status;
    final RpcErrorCodeProto code;
    final String className;
    final String errorMsg;

    RpcErr(RpcStatusProto status, RpcErrorCodeProto code, String className, String errorMsg) {
      super(className + ": " + errorMsg);
      this.status = status;
      this.code = code;
      this.className = className;
      this.errorMsg = errorMsg;
    }

    /** FatalRpcServerException(code, String): the cause is a plain RpcServerException. */
    static RpcErr fatal(RpcErrorCodeProto code, String message) {
      return new RpcErr(RpcStatusProto.FATAL, code, RPC_SERVER_EXCEPTION, message);
    }

    /** FatalRpcServerException(code, IOException): the cause's class and message go on the wire. */
    static RpcErr fatal(RpcErrorCodeProto code, String className, String message) {
      return new RpcErr(RpcStatusProto.FATAL, code, className, message);
    }
  }

  /**
   * An exception a handler throws (Server.RpcCall.run → populateResponseParamsOnError): status ERROR,
   * errorMsg = StringUtils.stringifyException(t) with the leading "class: " removed.
   */
  static final class AppException extends Exception {
    final String className;
    final RpcErrorCodeProto code;

    AppException(String className, String message, RpcErrorCodeProto code) {
      super(message);
      this.className = className;
      this.code = code;
    }

    @Override
    public String toString() {
      return getLocalizedMessage() == null ? className : className + ": " + getLocalizedMessage();
    }

    String errorMsg() {
      String s = stringify(this);
      String hdr = className + ": ";
      return s.startsWith(hdr) ? s.substring(hdr.length()) : s;
    }
  }

  static String stringify(Throwable t) {
    StringWriter sw = new StringWriter();
    PrintWriter pw = new PrintWriter(sw);
    t.printStackTrace(pw);
    pw.close();
    return sw.toString();
  }

  /** OMException with a result code (its name equals the Status enum's). */
  static final class OmException extends Exception {
    final Status status;

    OmException(String message, Status status) {
      super(message);
      this.status = status;
    }
  }

  // ---- one client connection (Server.Connection) ----
  final class Conn implements Runnable {
    final int id = connSeq.incrementAndGet();
    final Node node;
    final Socket socket;
    final boolean silent;
    final String local;
    final int remotePort;
    final long openedAt = System.currentTimeMillis();
    final Object writeLock = new Object();
    final Object saslLock = new Object();
    OutputStream out;

    // protocol state (reader thread, some read by handlers)
    volatile String authProtocol; // SASL | NONE
    volatile String authMethod; // KERBEROS | TOKEN
    SaslServer saslServer;
    boolean sentNegotiate;
    RpcSaslProto negotiateResponse;
    volatile boolean saslContextEstablished;
    volatile boolean useWrap;
    volatile String qop;
    volatile String user; // authenticated principal (authorization id)
    volatile boolean contextRead;
    volatile String protocolName;
    volatile String contextEffectiveUser;
    volatile String contextRealUser;
    volatile boolean contextHasUserInfo;
    volatile boolean shouldClose;
    volatile String closedBy;
    volatile Long closedAt;
    final ByteArrayOutputStream unwrapped = new ByteArrayOutputStream();

    // recording
    final List<String> saslStates = Collections.synchronizedList(new ArrayList<>());
    final List<String> wrapErrors = Collections.synchronizedList(new ArrayList<>());
    final List<String> errors = Collections.synchronizedList(new ArrayList<>());
    final AtomicInteger plaintextAfterLayer = new AtomicInteger();
    final AtomicInteger wrappedFramesIn = new AtomicInteger();
    final AtomicInteger wrapTokensIn = new AtomicInteger();
    final AtomicInteger wrapTokensOut = new AtomicInteger();
    final AtomicInteger pings = new AtomicInteger();
    final AtomicInteger calls = new AtomicInteger();
    volatile Map<String, Object> fatal;
    volatile String header;

    Conn(Node node, Socket socket) {
      this.node = node;
      this.socket = socket;
      this.silent = node.role.role.equals("silent");
      this.local = socket.getLocalAddress().getHostAddress();
      this.remotePort = socket.getPort();
    }

    @Override
    public void run() {
      try {
        out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
        DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 64 * 1024));
        if (silent) {
          byte[] sink = new byte[8192];
          while (in.read(sink) >= 0) {
            // a silent node accepts TCP and never answers
          }
          close("client");
          return;
        }
        byte[] magic = new byte[4];
        byte[] rest = new byte[3];
        in.readFully(magic);
        in.readFully(rest);
        int version = rest[0];
        header = HexFormat.of().formatHex(magic) + HexFormat.of().formatHex(rest);
        if (Arrays.equals(magic, "GET ".getBytes(StandardCharsets.UTF_8))) {
          writeRaw(RECEIVED_HTTP_REQ_RESPONSE.getBytes(StandardCharsets.UTF_8));
          close("server-http-get");
          return;
        }
        if (!Arrays.equals(magic, "hrpc".getBytes(StandardCharsets.UTF_8)) || version != CURRENT_VERSION) {
          setupBadVersionResponse(version);
          close("server-bad-header");
          return;
        }
        if (!initializeAuthContext(rest[2])) {
          close("server-fatal");
          return;
        }
        while (!shouldClose) {
          int len;
          try {
            len = in.readInt();
          } catch (EOFException eof) {
            close("client");
            return;
          }
          checkDataLength(len);
          byte[] data = new byte[len];
          in.readFully(data);
          processOneRpc(data, false);
        }
        close("server-fatal");
      } catch (EOFException e) {
        close("client");
      } catch (Exception e) {
        // Anything that is not an RPC error is fatal to the connection and answered with nothing.
        errors.add(e.toString());
        if (debug) log("conn " + id + ": " + stringify(e));
        close(closedBy != null ? closedBy : "server-error");
      }
    }

    void checkDataLength(int dataLength) throws IOException {
      if (dataLength < 0) {
        throw new IOException("Unexpected data length " + dataLength + "!! from " + socket.getInetAddress().getHostAddress());
      } else if (dataLength > maxDataLength) {
        throw new IOException(
            "Requested data length " + dataLength + " is longer than maximum configured RPC length "
                + maxDataLength + ".  RPC came from " + socket.getInetAddress().getHostAddress());
      }
    }

    void close(String by) {
      synchronized (writeLock) {
        if (closedAt == null) {
          if (closedBy == null) closedBy = by;
          closedAt = System.currentTimeMillis();
        }
        try {
          if (!socket.isClosed()) {
            try {
              socket.shutdownOutput();
            } catch (IOException ignored) {
              // already gone
            }
            socket.close();
          }
        } catch (IOException ignored) {
          // closing anyway
        }
      }
    }

    /** Server.setupBadVersionResponse. */
    void setupBadVersionResponse(int clientVersion) throws IOException {
      String errMsg = "Server IPC version " + CURRENT_VERSION + " cannot communicate with client version " + clientVersion;
      if (clientVersion >= 9) {
        sendError(-1, INVALID_RETRY_COUNT, DUMMY_CLIENT_ID,
            RpcErr.fatal(RpcErrorCodeProto.FATAL_VERSION_MISMATCH, VERSION_MISMATCH, errMsg));
      } else if (clientVersion >= 3) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(b);
        d.writeInt(-1);
        d.writeInt(-1);
        writeString(d, VERSION_MISMATCH);
        writeString(d, errMsg);
        writeRaw(b.toByteArray());
      } else if (clientVersion == 2) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(b);
        d.writeInt(0);
        d.writeBoolean(true);
        writeString(d, VERSION_MISMATCH);
        writeString(d, errMsg);
        writeRaw(b.toByteArray());
      }
    }

    /** WritableUtils.writeString. */
    void writeString(DataOutputStream d, String s) throws IOException {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      d.writeInt(b.length);
      d.write(b);
    }

    /** Server.Connection.initializeAuthContext on a secure server (SIMPLE not enabled). */
    boolean initializeAuthContext(int authType) throws IOException {
      if (authType == SASL_CALL_ID) {
        authProtocol = "SASL";
        return true;
      }
      String msg;
      String cls;
      if (authType == 0) {
        authProtocol = "NONE";
        cls = ACCESS_CONTROL;
        msg = "SIMPLE authentication is not enabled.  Available:" + enabledAuthMethods();
      } else {
        cls = IPC_EXCEPTION;
        msg = "Unknown auth protocol:" + authType;
      }
      // doSaslReply(Exception): the fake authFailedCall, FATAL_UNAUTHORIZED, message without stack
      sendError(AUTHORIZATION_FAILED_CALL_ID, INVALID_RETRY_COUNT, DUMMY_CLIENT_ID,
          RpcErr.fatal(RpcErrorCodeProto.FATAL_UNAUTHORIZED, cls, msg));
      return false;
    }

    String enabledAuthMethods() {
      return tokenAuth ? "[TOKEN, KERBEROS]" : "[KERBEROS]";
    }

    /** Server.Connection.processOneRpc. */
    void processOneRpc(byte[] data, boolean wrapped) throws Exception {
      int callId = -1;
      int retry = INVALID_RETRY_COUNT;
      try {
        Buf buf = new Buf(data);
        RpcRequestHeaderProto header = getMessage(buf, RpcRequestHeaderProto.parser(), "RpcRequestHeaderProto");
        callId = header.getCallId();
        retry = header.getRetryCount();
        if (wrapped) wrappedFramesIn.incrementAndGet();
        if (!wrapped && useWrap && callId != SASL_CALL_ID) plaintextAfterLayer.incrementAndGet();
        checkRpcHeaders(header);
        if (callId < 0) {
          processRpcOutOfBandRequest(header, buf, wrapped);
        } else if (!contextRead) {
          throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, "Connection context not established");
        } else {
          processRpcRequest(header, buf, wrapped);
        }
      } catch (RpcErr e) {
        sendError(callId, retry, DUMMY_CLIENT_ID, e);
      }
    }

    <T extends Message> T getMessage(Buf buf, Parser<T> parser, String name) throws RpcErr {
      try {
        return buf.read(parser);
      } catch (Exception e) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_DESERIALIZING_REQUEST, "Error decoding " + name + ": " + e);
      }
    }

    void checkRpcHeaders(RpcRequestHeaderProto header) throws RpcErr {
      if (!header.hasRpcOp()) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, " IPC Server: No rpc op in rpcRequestHeader");
      }
      if (header.getRpcOp() != RpcRequestHeaderProto.OperationProto.RPC_FINAL_PACKET) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER,
            "IPC Server does not implement rpc header operation" + header.getRpcOp());
      }
      if (!header.hasRpcKind()) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, " IPC Server: No rpc kind in rpcRequestHeader");
      }
    }

    void processRpcOutOfBandRequest(RpcRequestHeaderProto header, Buf buf, boolean wrapped) throws Exception {
      int callId = header.getCallId();
      if (callId == CONNECTION_CONTEXT_CALL_ID) {
        if ("SASL".equals(authProtocol) && !saslContextEstablished) {
          throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, "Connection header sent during SASL negotiation");
        }
        processConnectionContext(buf);
      } else if (callId == SASL_CALL_ID) {
        if (!"SASL".equals(authProtocol)) {
          throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, "SASL protocol not requested by client");
        }
        saslReadAndProcess(buf);
      } else if (callId == PING_CALL_ID) {
        pings.incrementAndGet();
      } else {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, "Unknown out of band call #" + callId);
      }
    }

    void saslReadAndProcess(Buf buf) throws Exception {
      RpcSaslProto msg = getMessage(buf, RpcSaslProto.parser(), "RpcSaslProto");
      if (msg.getState() == SaslState.WRAP) {
        if (!saslContextEstablished || !useWrap) {
          throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, SASL_EXCEPTION, "Server is not wrapping data");
        }
        wrapTokensIn.incrementAndGet();
        unwrapPacketAndProcessRpcs(msg.getToken().toByteArray());
      } else {
        saslStates.add(msg.getState().name());
        saslProcess(msg);
      }
    }

    /** Unwraps one token and processes every complete frame in it; partial frames carry over. */
    void unwrapPacketAndProcessRpcs(byte[] token) throws Exception {
      byte[] clear;
      try {
        synchronized (saslLock) {
          clear = saslServer.unwrap(token, 0, token.length);
        }
      } catch (SaslException e) {
        // An IOException out of processOneRpc: the connection closes, nothing is answered.
        wrapErrors.add(e.toString() + (e.getCause() != null ? " (cause: " + e.getCause() + ")" : ""));
        closedBy = "server-unwrap-error";
        throw e;
      }
      unwrapped.write(clear);
      while (!shouldClose) {
        byte[] pending = unwrapped.toByteArray();
        if (pending.length < 4) return;
        int len = ((pending[0] & 0xff) << 24) | ((pending[1] & 0xff) << 16) | ((pending[2] & 0xff) << 8) | (pending[3] & 0xff);
        if (len < 0 || len > maxDataLength) {
          throw new IOException("bad length " + len + " inside a wrapped token");
        }
        if (pending.length < 4 + len) return;
        byte[] frame = Arrays.copyOfRange(pending, 4, 4 + len);
        unwrapped.reset();
        unwrapped.write(pending, 4 + len, pending.length - 4 - len);
        processOneRpc(frame, true);
      }
    }

    /** Server.Connection.saslProcess. */
    void saslProcess(RpcSaslProto saslMessage) throws Exception {
      if (saslContextEstablished) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, SASL_EXCEPTION, "Negotiation is already complete");
      }
      RpcSaslProto saslResponse;
      try {
        saslResponse = processSaslMessage(saslMessage);
        if (saslServer != null && saslServer.isComplete()) {
          user = saslServer.getAuthorizationID();
          saslContextEstablished = true;
        }
      } catch (RpcErr e) {
        throw e;
      } catch (AuthFailure e) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_UNAUTHORIZED, e.className, e.getMessage());
      } catch (IOException e) {
        // Hadoop logs the cause chain (the GSSException) and sends the client only the message.
        StringBuilder chain = new StringBuilder(e.toString());
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) chain.append(" <- ").append(c);
        errors.add("sasl: " + chain);
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_UNAUTHORIZED, e.getClass().getName(), e.getMessage());
      }
      if (saslResponse != null) {
        send(buildResponse(SASL_CALL_ID, INVALID_RETRY_COUNT, DUMMY_CLIENT_ID, saslResponse));
      }
      if (saslContextEstablished) {
        String negotiated = (String) saslServer.getNegotiatedProperty(Sasl.QOP);
        qop = negotiated;
        // wrapping only after the last auth response has been sent
        useWrap = negotiated != null && !"auth".equalsIgnoreCase(negotiated);
        if (!useWrap) disposeSasl();
      }
    }

    RpcSaslProto processSaslMessage(RpcSaslProto saslMessage) throws Exception {
      SaslState state = saslMessage.getState();
      switch (state) {
        case NEGOTIATE: {
          if (sentNegotiate) throw new AuthFailure(ACCESS_CONTROL, "Client already attempted negotiation");
          return buildSaslNegotiateResponse();
        }
        case INITIATE: {
          if (saslMessage.getAuthsCount() != 1) throw new SaslException("Client mechanism is malformed");
          SaslAuth clientAuth = saslMessage.getAuths(0);
          RpcSaslProto advertised = negotiateResponse();
          if (!advertised.getAuthsList().contains(clientAuth)) {
            if (sentNegotiate) {
              throw new AuthFailure(ACCESS_CONTROL,
                  clientAuth.getMethod() + " authentication is not enabled.  Available:" + enabledAuthMethods());
            }
            return buildSaslNegotiateResponse();
          }
          authMethod = clientAuth.getMethod();
          if (authMethod.equals("TOKEN")) {
            // No delegation tokens here (Hadoop would answer InvalidToken from its secret manager).
            throw new AuthFailure(INVALID_TOKEN, "ozs3 OM test server: delegation token authentication is not supported");
          }
          saslServer = createGssServer();
          return processSaslToken(saslMessage);
        }
        case RESPONSE: {
          if (saslServer == null) throw new IllegalStateException("RESPONSE before INITIATE"); // NPE in Hadoop: closes
          return processSaslToken(saslMessage);
        }
        default:
          throw new SaslException("Client sent unsupported state " + state);
      }
    }

    RpcSaslProto negotiateResponse() {
      if (negotiateResponse == null) {
        RpcSaslProto.Builder b = RpcSaslProto.newBuilder().setState(SaslState.NEGOTIATE);
        if (tokenAuth) {
          b.addAuths(SaslAuth.newBuilder().setMethod("TOKEN").setMechanism("DIGEST-MD5").setProtocol("").setServerId("default"));
        }
        b.addAuths(SaslAuth.newBuilder().setMethod("KERBEROS").setMechanism("GSSAPI").setProtocol(saslProtocol).setServerId(saslServerId));
        negotiateResponse = b.build();
      }
      return negotiateResponse;
    }

    /** The negotiate answer; TOKEN (always first) carries a DIGEST-MD5 challenge, as Hadoop's. */
    RpcSaslProto buildSaslNegotiateResponse() throws Exception {
      RpcSaslProto message = negotiateResponse();
      if (tokenAuth) {
        Map<String, Object> props = saslProps();
        SaslServer digest =
            Sasl.createSaslServer(
                "DIGEST-MD5", "", "default", props,
                callbacks -> {
                  throw new UnsupportedCallbackException(callbacks[0], "no delegation tokens here");
                });
        byte[] challenge = digest.evaluateResponse(new byte[0]);
        RpcSaslProto.Builder b = RpcSaslProto.newBuilder(message);
        b.getAuthsBuilder(0).setChallenge(ByteString.copyFrom(challenge));
        message = b.build();
        saslServer = digest;
      }
      sentNegotiate = true;
      return message;
    }

    Map<String, Object> saslProps() {
      Map<String, Object> props = new HashMap<>();
      props.put(Sasl.QOP, node.qop());
      props.put(Sasl.SERVER_AUTH, "true");
      return props;
    }

    SaslServer createGssServer() throws Exception {
      Map<String, Object> props = saslProps();
      CallbackHandler cb = OmTestServer::gssCallback;
      SaslServer s;
      try {
        s = Subject.doAs(subject, (PrivilegedExceptionAction<SaslServer>) () ->
            Sasl.createSaslServer("GSSAPI", saslProtocol, saslServerId, props, cb));
      } catch (PrivilegedActionException e) {
        throw e.getException();
      }
      if (s == null) throw new AuthFailure(ACCESS_CONTROL, "Unable to find SASL server implementation for GSSAPI");
      return s;
    }

    RpcSaslProto processSaslToken(RpcSaslProto saslMessage) throws SaslException {
      if (!saslMessage.hasToken()) throw new SaslException("Client did not send a token");
      byte[] token = saslServer.evaluateResponse(saslMessage.getToken().toByteArray());
      RpcSaslProto.Builder b = RpcSaslProto.newBuilder().setState(saslServer.isComplete() ? SaslState.SUCCESS : SaslState.CHALLENGE);
      if (token != null) b.setToken(ByteString.copyFrom(token));
      return b.build();
    }

    void disposeSasl() {
      if (saslServer != null) {
        try {
          saslServer.dispose();
        } catch (SaslException ignored) {
          // as Hadoop
        }
        saslServer = null;
      }
    }

    /** Server.Connection.processConnectionContext + authorizeConnection. */
    void processConnectionContext(Buf buf) throws RpcErr {
      if (contextRead) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, "Connection context already processed");
      }
      IpcConnectionContextProto ctx = getMessage(buf, IpcConnectionContextProto.parser(), "IpcConnectionContextProto");
      protocolName = ctx.hasProtocol() ? ctx.getProtocol() : null;
      contextHasUserInfo = ctx.hasUserInfo();
      String effective = ctx.hasUserInfo() && ctx.getUserInfo().hasEffectiveUser() ? ctx.getUserInfo().getEffectiveUser() : null;
      String real = ctx.hasUserInfo() && ctx.getUserInfo().hasRealUser() ? ctx.getUserInfo().getRealUser() : null;
      contextEffectiveUser = effective;
      contextRealUser = real;
      if (effective != null && effective.isEmpty()) {
        // UserGroupInformation.createRemoteUser("") throws IllegalArgumentException("Null user"):
        // not an RPC error, so the connection closes without an answer.
        throw new IllegalArgumentException("Null user");
      }
      if (effective != null && !effective.equals(user)) {
        // A proxy user (effective user ≠ authenticated user); no proxyuser rules are configured here.
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_UNAUTHORIZED, AUTHORIZATION,
            "User: " + user + " is not allowed to impersonate " + effective);
      }
      if (serviceAuthorization) {
        if (protocolName == null) {
          throw RpcErr.fatal(RpcErrorCodeProto.FATAL_UNAUTHORIZED, AUTHORIZATION, "Null protocol not authorized");
        }
        if (!protocolName.equals(OM_PROTOCOL)) {
          throw RpcErr.fatal(RpcErrorCodeProto.FATAL_UNAUTHORIZED, AUTHORIZATION, "Unknown protocol: " + protocolName);
        }
      }
      contextRead = true;
    }

    /** Server.Connection.processRpcRequest: queue the call for a handler. */
    void processRpcRequest(RpcRequestHeaderProto header, Buf buf, boolean wrapped) throws RpcErr {
      if (header.getRpcKind() == RpcKindProto.RPC_WRITABLE) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER, "WritableRpcEngine is not supported.");
      }
      if (header.getRpcKind() != RpcKindProto.RPC_PROTOCOL_BUFFER) {
        throw RpcErr.fatal(RpcErrorCodeProto.FATAL_INVALID_RPC_HEADER,
            "No protocols registered on this server for RpcKind " + header.getRpcKind()
                + ". Rejecting request without deserialization.");
      }
      calls.incrementAndGet();
      Map<String, Object> rec = new LinkedHashMap<>();
      rec.put("seq", requestSeq.incrementAndGet());
      rec.put("node", node.nodeId);
      rec.put("connection", id);
      rec.put("callId", header.getCallId());
      rec.put("clientId", HexFormat.of().formatHex(header.getClientId().toByteArray()));
      rec.put("retryCount", header.getRetryCount());
      rec.put("principal", user);
      rec.put("qop", qop);
      rec.put("wrapped", wrapped);
      rec.put("receivedMs", elapsedMs());
      requestLog.add(rec);
      byte[] rest = buf.rest();
      handlers.submit(() -> handle(header, rest, rec));
    }

    // ---- handler side (RpcCall.run → ProtobufRpcEngine.call → submitRequest) ----
    void handle(RpcRequestHeaderProto header, byte[] payload, Map<String, Object> rec) {
      int callId = header.getCallId();
      int retry = header.getRetryCount();
      byte[] clientId = header.getClientId().toByteArray();
      try {
        Buf buf = new Buf(payload);
        RequestHeaderProto rh;
        OMRequest req;
        try {
          rh = buf.read(RequestHeaderProto.parser());
        } catch (IOException e) {
          throw appFromThrowable(e);
        }
        synchronized (rec) {
          rec.put("methodName", rh.getMethodName());
          rec.put("declaringClassProtocolName", rh.getDeclaringClassProtocolName());
          rec.put("clientProtocolVersion", rh.getClientProtocolVersion());
        }
        if (!OM_PROTOCOL.equals(rh.getDeclaringClassProtocolName())) {
          throw new AppException(NO_SUCH_PROTOCOL, "Unknown protocol: " + rh.getDeclaringClassProtocolName(),
              RpcErrorCodeProto.ERROR_NO_SUCH_PROTOCOL);
        }
        if (rh.getClientProtocolVersion() != OM_PROTOCOL_VERSION) {
          throw new AppException(VERSION_MISMATCH,
              "Protocol " + OM_PROTOCOL + " version mismatch. (client = " + rh.getClientProtocolVersion()
                  + ", server = " + OM_PROTOCOL_VERSION + ")",
              RpcErrorCodeProto.ERROR_RPC_VERSION_MISMATCH);
        }
        if (!"submitRequest".equals(rh.getMethodName())) {
          throw new AppException(NO_SUCH_METHOD,
              "Unknown method " + rh.getMethodName() + " called on " + protocolName + " protocol.",
              RpcErrorCodeProto.ERROR_NO_SUCH_METHOD);
        }
        try {
          req = buf.read(OMRequest.parser());
        } catch (IOException e) {
          throw appFromThrowable(e);
        }
        synchronized (rec) {
          rec.put("cmdType", req.getCmdType().name());
          rec.put("accessId", accessIdOf(req));
          rec.put("omClientId", req.getClientId());
          rec.put("traceID", req.hasTraceID() ? req.getTraceID() : null);
          if (req.hasGetS3SecretRequest() && req.getGetS3SecretRequest().hasCreateIfNotExist()) {
            rec.put("createIfNotExist", req.getGetS3SecretRequest().getCreateIfNotExist());
          }
        }
        long delay = delayFor(req);
        if (delay > 0) Thread.sleep(delay);
        RoleState role = node.role;
        String drop = null;
        if (role.role.equals("drop")) {
          int n = role.calls.incrementAndGet();
          if (n > role.dropAfterCalls && role.dropped.get() < role.dropCount) {
            role.dropped.incrementAndGet();
            drop = role.dropWhen;
          }
        }
        if ("before-processing".equals(drop)) {
          synchronized (rec) {
            rec.put("dropped", drop);
          }
          close("server-drop");
          return;
        }
        OMResponse resp = submitRequest(this, header, req, rec);
        synchronized (rec) {
          rec.put("status", resp.getStatus().name());
          rec.put("success", resp.getSuccess());
          if (resp.hasMessage()) rec.put("message", resp.getMessage());
        }
        if ("after-processing".equals(drop)) {
          synchronized (rec) {
            rec.put("dropped", drop);
          }
          close("server-drop");
          return;
        }
        byte[] frame = buildResponse(callId, retry, clientId, resp);
        synchronized (rec) {
          rec.put("rpcStatus", "SUCCESS");
          rec.put("answeredMs", elapsedMs());
        }
        send(frame);
      } catch (AppException e) {
        synchronized (rec) {
          rec.put("rpcStatus", "ERROR");
          rec.put("exceptionClassName", e.className);
          rec.put("errorMsg", e.getMessage());
          rec.put("answeredMs", elapsedMs());
        }
        try {
          sendError(callId, retry, clientId,
              new RpcErr(RpcStatusProto.ERROR, e.code, e.className, e.errorMsg()));
        } catch (IOException io) {
          errors.add("answer to call " + callId + ": " + io);
        }
      } catch (IOException e) {
        errors.add("answer to call " + callId + ": " + e);
        synchronized (rec) {
          rec.put("sendError", e.toString());
        }
      } catch (Exception e) {
        errors.add("call " + callId + ": " + stringify(e));
        log("conn " + id + " call " + callId + ": " + stringify(e));
      }
    }

    AppException appFromThrowable(Throwable t) {
      AppException a = new AppException(t.getClass().getName(), t.getMessage(), RpcErrorCodeProto.ERROR_APPLICATION);
      a.setStackTrace(t.getStackTrace());
      return a;
    }

    long delayFor(OMRequest req) {
      Map<String, Long> d = delays;
      long max = 0;
      for (String k : new String[] {accessIdOf(req), req.getCmdType().name(), user, shortName(user)}) {
        if (k != null && d.containsKey(k)) max = Math.max(max, d.get(k));
      }
      return max;
    }

    // ---- writing (Responder.doRespond: wrap, then write, in one order) ----
    void send(byte[] frame) throws IOException {
      synchronized (writeLock) {
        if (socket.isClosed()) throw new IOException("connection " + id + " is closed");
        byte[] bytes = frame;
        if (useWrap) {
          byte[] token;
          synchronized (saslLock) {
            token = saslServer.wrap(frame, 0, frame.length);
          }
          wrapTokensOut.incrementAndGet();
          RpcResponseHeaderProto saslHeader =
              RpcResponseHeaderProto.newBuilder().setCallId(SASL_CALL_ID).setStatus(RpcStatusProto.SUCCESS).build();
          RpcSaslProto wrap = RpcSaslProto.newBuilder().setState(SaslState.WRAP).setToken(ByteString.copyFrom(token)).build();
          bytes = frame(saslHeader, wrap);
        }
        out.write(bytes);
        out.flush();
      }
    }

    void writeRaw(byte[] bytes) throws IOException {
      synchronized (writeLock) {
        out.write(bytes);
        out.flush();
      }
    }

    void sendError(int callId, int retry, byte[] clientId, RpcErr e) throws IOException {
      RpcResponseHeaderProto header =
          RpcResponseHeaderProto.newBuilder()
              .setClientId(ByteString.copyFrom(clientId))
              .setCallId(callId)
              .setRetryCount(retry)
              .setStatus(e.status)
              .setServerIpcVersionNum(CURRENT_VERSION)
              .setExceptionClassName(e.className)
              .setErrorMsg(e.errorMsg)
              .setErrorDetail(e.code)
              .build();
      if (e.status == RpcStatusProto.FATAL) {
        shouldClose = true;
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("callId", callId);
        f.put("exceptionClassName", e.className);
        f.put("errorMsg", e.errorMsg);
        f.put("errorDetail", e.code.name());
        fatal = f;
      }
      send(frame(header, null));
    }

    byte[] buildResponse(int callId, int retry, byte[] clientId, Message payload) {
      RpcResponseHeaderProto header =
          RpcResponseHeaderProto.newBuilder()
              .setClientId(ByteString.copyFrom(clientId))
              .setCallId(callId)
              .setRetryCount(retry)
              .setStatus(RpcStatusProto.SUCCESS)
              .setServerIpcVersionNum(CURRENT_VERSION)
              .build();
      return frame(header, payload);
    }

    Map<String, Object> toJson() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("id", id);
      m.put("node", node.nodeId);
      m.put("remotePort", remotePort);
      m.put("local", local);
      m.put("silent", silent);
      m.put("header", header);
      m.put("authProtocol", authProtocol);
      m.put("authMethod", authMethod);
      m.put("saslStates", new ArrayList<>(saslStates));
      m.put("principal", user);
      m.put("qop", qop);
      m.put("wrapped", useWrap);
      m.put("contextRead", contextRead);
      m.put("protocol", protocolName);
      m.put("contextHasUserInfo", contextHasUserInfo);
      m.put("contextUser", contextEffectiveUser);
      m.put("contextRealUser", contextRealUser);
      m.put("calls", calls.get());
      m.put("pings", pings.get());
      m.put("plaintextAfterLayer", plaintextAfterLayer.get());
      m.put("wrappedFramesIn", wrappedFramesIn.get());
      m.put("wrapTokensIn", wrapTokensIn.get());
      m.put("wrapTokensOut", wrapTokensOut.get());
      m.put("wrapErrors", new ArrayList<>(wrapErrors));
      m.put("errors", new ArrayList<>(errors));
      m.put("fatal", fatal);
      m.put("openedAt", openedAt);
      m.put("closedAt", closedAt);
      m.put("closedBy", closedBy);
      return m;
    }
  }

  /** A callback-level SASL failure whose class name Hadoop would put on the wire. */
  static final class AuthFailure extends IOException {
    final String className;

    AuthFailure(String className, String message) {
      super(message);
      this.className = className;
    }
  }

  /** SaslRpcServer.SaslGssCallbackHandler: authorized iff authentication id == authorization id. */
  static void gssCallback(Callback[] callbacks) throws UnsupportedCallbackException {
    AuthorizeCallback ac = null;
    for (Callback c : callbacks) {
      if (c instanceof AuthorizeCallback) {
        ac = (AuthorizeCallback) c;
      } else {
        throw new UnsupportedCallbackException(c, "Unrecognized SASL GSSAPI Callback");
      }
    }
    if (ac != null) {
      String authid = ac.getAuthenticationID();
      String authzid = ac.getAuthorizationID();
      ac.setAuthorized(authid.equals(authzid));
      if (ac.isAuthorized()) ac.setAuthorizedID(authzid);
    }
  }

  /** A length-prefixed frame of delimited messages (Server.setupResponseForProtobuf). */
  static byte[] frame(Message header, Message payload) {
    int length = delimitedLength(header) + (payload != null ? delimitedLength(payload) : 0);
    byte[] buf = new byte[length + 4];
    CodedOutputStream cos = CodedOutputStream.newInstance(buf);
    try {
      cos.writeFixed32NoTag(0); // placeholder, rewritten below (big-endian)
      cos.writeUInt32NoTag(header.getSerializedSize());
      header.writeTo(cos);
      if (payload != null) {
        cos.writeUInt32NoTag(payload.getSerializedSize());
        payload.writeTo(cos);
      }
      cos.checkNoSpaceLeft();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    buf[0] = (byte) (length >>> 24);
    buf[1] = (byte) (length >>> 16);
    buf[2] = (byte) (length >>> 8);
    buf[3] = (byte) length;
    return buf;
  }

  static int delimitedLength(Message m) {
    int n = m.getSerializedSize();
    return n + CodedOutputStream.computeUInt32SizeNoTag(n);
  }

  /** RpcWritable.Buffer: delimited messages read one after the other. */
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

    byte[] rest() {
      return Arrays.copyOfRange(a, pos, a.length);
    }
  }

  // ---- the OM (OzoneManagerProtocolServerSideTranslatorPB.submitRequest) ----
  OMResponse submitRequest(Conn conn, RpcRequestHeaderProto header, OMRequest request, Map<String, Object> rec)
      throws Exception {
    Node node = conn.node;
    // OzoneManagerRatisUtils.checkLeaderStatus (every S3 secret request is a write request)
    checkLeaderStatus(node);
    // omRatisServer.checkRetryCache(): the Ratis retry cache, keyed by the RPC client id and call id
    String key = HexFormat.of().formatHex(header.getClientId().toByteArray()) + ":" + header.getCallId();
    CompletableFuture<OMResponse> cached = retryCache.get(key);
    if (cached != null) {
      synchronized (rec) {
        rec.put("replayed", true);
      }
      return withLeader(cached.get(), node);
    }
    // OMExecutionFlow: create the client request and preExecute it; failures answer at once
    final OMRequest toSubmit;
    try {
      toSubmit = preExecute(conn, request);
    } catch (OmException e) {
      return createErrorResponse(request, e);
    }
    // submit to "Ratis": the retry cache entry exists from here on
    CompletableFuture<OMResponse> mine = new CompletableFuture<>();
    CompletableFuture<OMResponse> raced = retryCache.putIfAbsent(key, mine);
    if (raced != null) {
      synchronized (rec) {
        rec.put("replayed", true);
      }
      return withLeader(raced.get(), node);
    }
    synchronized (rec) {
      rec.put("replayed", false);
    }
    OMResponse applied;
    try {
      applied = validateAndUpdateCache(toSubmit);
    } catch (RuntimeException e) {
      mine.completeExceptionally(e);
      throw e;
    }
    mine.complete(applied);
    return withLeader(applied, node);
  }

  /** OMRatisHelper.getOMResponseFromRaftClientReply: the reply names the current leader. */
  static OMResponse withLeader(OMResponse r, Node node) {
    return OMResponse.newBuilder(r).setLeaderOMNodeId(node.nodeId).build();
  }

  void checkLeaderStatus(Node node) throws AppException {
    RoleState role = node.role;
    switch (role.role) {
      case "follower": {
        // OzoneManagerRatisServer.newOMNotLeaderException → OMNotLeaderException messages
        String leaderId;
        String address;
        if (role.suggestedLeaderSet) {
          leaderId = role.suggestedLeader;
          address = role.suggestedLeaderAddress;
          if (address == null && leaderId != null) address = addressOf(leaderId);
        } else {
          leaderId = null;
          address = null;
          for (Node n : nodes) {
            if (n != node && n.role.leaderLike()) {
              leaderId = n.nodeId;
              address = addressOf(n.nodeId);
              break;
            }
          }
        }
        String msg = leaderId == null
            ? "OM:" + node.nodeId + " is not the leader. Could not determine the leader node."
            : "OM:" + node.nodeId + " is not the leader. Suggested leader is OM:" + leaderId + "[" + address + "].";
        throw new AppException(NOT_LEADER, msg, RpcErrorCodeProto.ERROR_APPLICATION);
      }
      case "not-ready": {
        if (role.notReadyAnswered.incrementAndGet() <= role.notReadyCalls) {
          throw new AppException(NOT_READY, node.nodeId + " is Leader but not ready to process request yet.",
              RpcErrorCodeProto.ERROR_APPLICATION);
        }
        return;
      }
      default:
        return;
    }
  }

  /** OzoneManagerRatisServer.getRaftLeaderAddress: InetAddress.toString() of the peer's host. */
  String addressOf(String nodeId) {
    for (Node n : nodes) {
      if (n.nodeId.equals(nodeId)) {
        try {
          return InetAddress.getByName(n.host).toString();
        } catch (IOException e) {
          return null;
        }
      }
    }
    return null;
  }

  static String accessIdOf(OMRequest r) {
    switch (r.getCmdType()) {
      case GetS3Secret: return r.getGetS3SecretRequest().getKerberosID();
      case RevokeS3Secret: return r.getRevokeS3SecretRequest().getKerberosID();
      case SetS3Secret: return r.getSetS3SecretRequest().getAccessId();
      default: return null;
    }
  }

  /** Hadoop's default auth_to_local: the first component for the default realm, else the full name. */
  String shortName(String principalName) {
    if (principalName == null) return null;
    int at = principalName.indexOf('@');
    String r = at >= 0 ? principalName.substring(at + 1) : null;
    if (r != null && !r.equals(realm)) return principalName;
    return principalName.split("[/@]", 2)[0];
  }

  /** OzoneAdmins.isS3Admin: '*', or the short name; the OM's own service user is always one. */
  boolean isS3Admin(String userName) {
    Set<String> a = admins;
    String s = shortName(userName);
    return a.contains("*") || a.contains(s) || s.equals(shortName(principal));
  }

  /** S3SecretRequestHelper.checkAccessIdSecretOpPermission with multi-tenancy off. */
  void checkAccessIdSecretOpPermission(String userName, String accessId) throws OmException {
    if (!userName.equals(accessId) && !isS3Admin(userName)) {
      throw new OmException("Requested accessId '" + accessId + "' doesn't match current user '" + userName
          + "', nor does current user has administrator privilege.", Status.USER_MISMATCH);
    }
  }

  OMRequest preExecute(Conn conn, OMRequest request) throws OmException {
    String userName = conn.user;
    switch (request.getCmdType()) {
      case GetS3Secret: {
        GetS3SecretRequest g = request.getGetS3SecretRequest();
        String accessId = g.getKerberosID();
        checkAccessIdSecretOpPermission(userName, accessId);
        OMRequest.Builder b = OMRequest.newBuilder().setCmdType(request.getCmdType()).setClientId(request.getClientId());
        boolean createIfNotExist = !g.hasCreateIfNotExist() || g.getCreateIfNotExist();
        b.setGetS3SecretRequest(GetS3SecretRequest.newBuilder().setKerberosID(accessId).setCreateIfNotExist(createIfNotExist));
        if (createIfNotExist) {
          String preset;
          synchronized (storeLock) {
            preset = presetSecrets.get(accessId);
          }
          String s3Secret = preset != null ? preset : sha256Hex(shaDigest());
          b.setUpdateGetS3SecretRequest(UpdateGetS3SecretRequest.newBuilder().setKerberosID(accessId).setAwsSecret(s3Secret));
        }
        if (request.hasTraceID()) b.setTraceID(request.getTraceID());
        return b.build();
      }
      case RevokeS3Secret: {
        String accessId = request.getRevokeS3SecretRequest().getKerberosID();
        checkAccessIdSecretOpPermission(userName, accessId);
        OMRequest.Builder b = OMRequest.newBuilder()
            .setRevokeS3SecretRequest(RevokeS3SecretRequest.newBuilder().setKerberosID(accessId))
            .setCmdType(request.getCmdType())
            .setClientId(request.getClientId());
        if (request.hasTraceID()) b.setTraceID(request.getTraceID());
        return b.build();
      }
      case SetS3Secret: {
        SetS3SecretRequest s = request.getSetS3SecretRequest();
        String accessId = s.getAccessId();
        boolean exists;
        synchronized (storeLock) {
          exists = secrets.containsKey(accessId);
        }
        if (!exists) throw new OmException("accessId '" + accessId + "' not found.", Status.ACCESS_ID_NOT_FOUND);
        String secretKey = s.getSecretKey();
        if (secretKey.isEmpty()) throw new OmException("Secret key should not be empty", Status.INVALID_REQUEST);
        if (secretKey.length() < S3_SECRET_KEY_MIN_LENGTH) {
          throw new OmException("Secret key length should be at least " + S3_SECRET_KEY_MIN_LENGTH + " characters",
              Status.INVALID_REQUEST);
        }
        checkAccessIdSecretOpPermission(userName, accessId);
        return request;
      }
      default:
        return request;
    }
  }

  /** OzoneManagerRatisUtils.createErrorResponse: traceID always set (empty when not sent). */
  static OMResponse createErrorResponse(OMRequest request, OmException e) {
    OMResponse.Builder b = OMResponse.newBuilder()
        .setStatus(e.status)
        .setCmdType(request.getCmdType())
        .setTraceID(request.getTraceID())
        .setSuccess(false);
    if (e.getMessage() != null) b.setMessage(e.getMessage());
    return b.build();
  }

  /** OmResponseUtil.getOMResponseBuilder. */
  static OMResponse.Builder responseBuilder(OMRequest request) {
    return OMResponse.newBuilder()
        .setCmdType(request.getCmdType())
        .setStatus(Status.OK)
        .setTraceID(request.getTraceID())
        .setSuccess(true);
  }

  /** OMClientRequest.createErrorOMResponse for an OMException. */
  static OMResponse errorResponse(OMResponse.Builder b, OmException e) {
    b.setSuccess(false);
    if (e.getMessage() != null) b.setMessage(e.getMessage());
    b.setStatus(e.status);
    return b.build();
  }

  OMResponse validateAndUpdateCache(OMRequest request) {
    OMResponse.Builder resp = responseBuilder(request);
    switch (request.getCmdType()) {
      case GetS3Secret: {
        GetS3SecretRequest g = request.getGetS3SecretRequest();
        boolean createIfNotExist = g.getCreateIfNotExist();
        String accessId = g.getKerberosID();
        String awsSecret = createIfNotExist ? request.getUpdateGetS3SecretRequest().getAwsSecret() : null;
        try {
          synchronized (storeLock) {
            String existing = secrets.get(accessId);
            if (existing == null) {
              if (createIfNotExist) {
                secrets.put(accessId, awsSecret);
                presetSecrets.remove(accessId);
              }
            } else {
              // multi-tenancy off: no tenant holds this access id, so the secret is never shown again
              throw new OmException("Secret for '" + accessId + "' already exists", Status.S3_SECRET_ALREADY_EXISTS);
            }
            if (awsSecret == null) {
              throw new OmException("accessId '" + accessId + "' doesn't exist", Status.ACCESS_ID_NOT_FOUND);
            }
          }
          return resp.setGetS3SecretResponse(GetS3SecretResponse.newBuilder()
              .setS3Secret(S3Secret.newBuilder().setAwsSecret(awsSecret).setKerberosID(accessId))).build();
        } catch (OmException e) {
          return errorResponse(resp, e);
        }
      }
      case RevokeS3Secret: {
        String accessId = request.getRevokeS3SecretRequest().getKerberosID();
        synchronized (storeLock) {
          if (secrets.containsKey(accessId)) {
            secrets.remove(accessId);
            return resp.setStatus(Status.OK).build();
          }
          return resp.setStatus(Status.S3_SECRET_NOT_FOUND).build();
        }
      }
      case SetS3Secret: {
        SetS3SecretRequest s = request.getSetS3SecretRequest();
        synchronized (storeLock) {
          if (!secrets.containsKey(s.getAccessId())) {
            return errorResponse(resp, new OmException("accessId '" + s.getAccessId() + "' not found.", Status.ACCESS_ID_NOT_FOUND));
          }
          secrets.put(s.getAccessId(), s.getSecretKey());
        }
        return resp.setSetS3SecretResponse(SetS3SecretResponse.newBuilder().setAccessId(s.getAccessId()).setSecretKey(s.getSecretKey()))
            .build();
      }
      default:
        return errorResponse(resp, new OmException(
            "ozs3 OM test server: " + request.getCmdType() + " is not implemented", Status.INTERNAL_ERROR));
    }
  }

  /** OmUtils.getSHADigest: SHA-256 of random bytes. */
  byte[] shaDigest() {
    byte[] r = new byte[64];
    random.nextBytes(r);
    return sha256(r);
  }

  static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** DigestUtils.sha256Hex. */
  static String sha256Hex(byte[] b) {
    return HexFormat.of().formatHex(sha256(b));
  }

  long elapsedMs() {
    return (System.nanoTime() - startNanos) / 1_000_000;
  }

  void log(String s) {
    System.err.println("[om-test-server] " + s);
  }

  // ---- control channel ----
  void emit(Map<String, Object> m) {
    String line = Json.write(m);
    synchronized (stdout) {
      stdout.println(line);
      stdout.flush();
    }
  }

  Object control(Map<String, Object> msg) throws Exception {
    String op = Json.str(msg, "op", "");
    switch (op) {
      case "requests": {
        List<Object> l = new ArrayList<>();
        synchronized (requestLog) {
          for (Map<String, Object> r : requestLog) {
            synchronized (r) {
              l.add(new LinkedHashMap<>(r));
            }
          }
        }
        return l;
      }
      case "connections": {
        List<Object> l = new ArrayList<>();
        synchronized (connections) {
          for (Conn c : connections) l.add(c.toJson());
        }
        return l;
      }
      case "secrets": {
        synchronized (storeLock) {
          return new LinkedHashMap<>(secrets);
        }
      }
      case "setSecret": {
        String accessId = Json.str(msg, "accessId", null);
        Object secret = msg.get("secret");
        synchronized (storeLock) {
          if (secret == null) secrets.remove(accessId);
          else secrets.put(accessId, secret.toString());
        }
        return null;
      }
      case "presetSecret": {
        synchronized (storeLock) {
          presetSecrets.put(Json.str(msg, "accessId", null), Json.str(msg, "secret", null));
        }
        return null;
      }
      case "setRole": {
        Node n = node(Json.str(msg, "nodeId", null));
        n.role = new RoleState(Json.str(msg, "role", "leader"), Json.obj(msg, "options"));
        return n.toJson();
      }
      case "setOptions": {
        applyOptions(Json.obj(msg, "options"));
        return null;
      }
      case "nodes": {
        List<Object> l = new ArrayList<>();
        for (Node n : nodes) l.add(n.toJson());
        return l;
      }
      case "reset": {
        requestLog.clear();
        connections.removeIf(c -> c.closedBy != null);
        if (Json.bool(msg, "retryCache", false)) retryCache.clear();
        return null;
      }
      case "closeConnections": {
        synchronized (connections) {
          for (Conn c : connections) c.close("server-closed");
        }
        return null;
      }
      case "close": {
        return "closing";
      }
      default:
        throw new IllegalArgumentException("unknown op " + op);
    }
  }

  public static void main(String[] args) throws Exception {
    PrintStream stdout = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
    System.setOut(System.err); // nothing else may write on the control channel
    String cfgText = System.getenv("OZS3_OM_CONFIG");
    if (cfgText == null) throw new IllegalArgumentException("OZS3_OM_CONFIG is not set");
    OmTestServer server;
    try {
      server = new OmTestServer(Json.parseObject(cfgText), stdout);
    } catch (Exception e) {
      System.err.println("[om-test-server] start failed: " + stringify(e));
      System.exit(2);
      return;
    }
    for (Node n : server.nodes) n.start();
    Map<String, Object> ready = new LinkedHashMap<>();
    ready.put("type", "ready");
    ready.put("pid", ProcessHandle.current().pid());
    ready.put("principal", server.principal);
    List<Object> ns = new ArrayList<>();
    for (Node n : server.nodes) ns.add(n.toJson());
    ready.put("nodes", ns);
    server.emit(ready);

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      Map<String, Object> msg;
      try {
        msg = Json.parseObject(line);
      } catch (Exception e) {
        server.log("bad control line: " + line);
        continue;
      }
      Map<String, Object> reply = new LinkedHashMap<>();
      reply.put("id", msg.get("id"));
      try {
        Object result = server.control(msg);
        reply.put("ok", true);
        reply.put("result", result);
      } catch (Exception e) {
        reply.put("ok", false);
        reply.put("error", e.toString());
      }
      server.emit(reply);
      if ("close".equals(msg.get("op"))) break;
    }
    // stdin closed (the test process is gone) or close: stop at once, nothing needs cleaning up
    stdout.flush();
    Runtime.getRuntime().halt(0);
  }

  static {
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> System.err.println("[om-test-server] " + t.getName() + ": " + stringify(e)));
  }
}
