/*
 * A JDK-GSS S3 secret gateway for tests: Ozone's S3 Gateway web admin server in miniature. Real
 * Jetty 9.4 (Debian's libjetty9-java, the 9.4 line Ozone ships) configured as Ozone's HttpServer2
 * configures it (request/response header size 65536 unless told otherwise, no Server header,
 * NoCacheFilter and the "safety" filter's headers on every response), Hadoop's AuthenticationFilter
 * + KerberosAuthenticationHandler rewritten on the JDK's GSS (HadoopAuthFilter) on /secret/*, and
 * the secret endpoint as Jersey would answer (SecretServlet). Nothing here is Hadoop's or Ozone's
 * code; what the wire carries is Jetty's own doing.
 *
 * Config: JSON in env OZS3_JDKGW_CONFIG (see jdk-gateway.ts). Control: JSON lines on stdin
 * ({"id":1,"op":"requests"}), answers as JSON lines on stdout; the first stdout line is
 * {"type":"ready","port":...}. EOF on stdin (the test process is gone) stops the JVM at once.
 */
package ozs3.jdkgw;

import ozs3.common.Json;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.PrivilegedExceptionAction;
import java.util.EnumSet;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.security.auth.Subject;
import javax.security.auth.kerberos.KerberosPrincipal;
import javax.security.auth.kerberos.KeyTab;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.LoginContext;
import javax.servlet.DispatcherType;
import javax.servlet.Filter;
import javax.servlet.FilterChain;
import javax.servlet.FilterConfig;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.http.BadMessageException;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.HttpChannel;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ErrorPageErrorHandler;
import org.eclipse.jetty.servlet.FilterHolder;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.ietf.jgss.GSSManager;

public final class JdkGateway {
  static final String RECORD_ATTR = "ozs3.record";
  private static final PrintStream stdout = new PrintStream(System.out, false, StandardCharsets.UTF_8);

  private JdkGateway() {}

  static GatewayState.Record record(HttpServletRequest req) {
    return (GatewayState.Record) req.getAttribute(RECORD_ATTR);
  }

  static synchronized void emit(Map<String, Object> msg) {
    stdout.println(Json.write(msg));
    stdout.flush();
  }

  static void log(String msg) {
    System.err.println("[jdk-gateway] " + msg);
  }

  // ---- the server's Kerberos identity ----

  /**
   * Hadoop 3.x's KerberosAuthenticationHandler.init: the keytab (KeyTab.getInstance, bound to the
   * subject's principals) and one KerberosPrincipal per configured SPNEGO principal in a Subject,
   * no login at all. "jaas" instead logs each principal in with Krb5LoginModule (isInitiator=false),
   * as Hadoop 2.x did.
   */
  static Subject serverSubject(String keytab, List<String> principals, String mode, boolean debug) throws Exception {
    Subject subject = new Subject();
    if (!mode.equals("jaas")) {
      subject.getPrivateCredentials().add(KeyTab.getInstance(new File(keytab)));
      for (String p : principals) subject.getPrincipals().add(new KerberosPrincipal(p));
      return subject;
    }
    for (String principal : principals) {
      javax.security.auth.login.Configuration conf =
          new javax.security.auth.login.Configuration() {
            @Override
            public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
              Map<String, String> o = new HashMap<>();
              o.put("keyTab", keytab);
              o.put("principal", principal);
              o.put("useKeyTab", "true");
              o.put("storeKey", "true");
              o.put("doNotPrompt", "true");
              o.put("isInitiator", "false");
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
      new LoginContext("", subject, null, conf).login();
    }
    return subject;
  }

  // ---- HttpServer2's filters in front of everything ----

  /** NoCacheFilter: Cache-Control, Expires, Date, Pragma. */
  static final class NoCacheFilter implements Filter {
    @Override
    public void init(FilterConfig c) {}

    @Override
    public void destroy() {}

    @Override
    public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
        throws IOException, ServletException {
      HttpServletResponse r = (HttpServletResponse) res;
      r.setHeader("Cache-Control", "no-cache");
      long now = System.currentTimeMillis();
      r.setDateHeader("Expires", now);
      r.setDateHeader("Date", now);
      r.setHeader("Pragma", "no-cache");
      chain.doFilter(req, res);
    }
  }

  /** QuotingInputFilter ("safety"): default content type for unknown paths and the default headers. */
  static final class SafetyFilter implements Filter {
    @Override
    public void init(FilterConfig c) {}

    @Override
    public void destroy() {}

    @Override
    public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
        throws IOException, ServletException {
      HttpServletResponse r = (HttpServletResponse) res;
      r.setContentType("text/plain; charset=utf-8");
      r.setHeader("X-Content-Type-Options", "nosniff");
      r.setHeader("X-XSS-Protection", "1; mode=block");
      r.setHeader("X-FRAME-OPTIONS", "SAMEORIGIN");
      chain.doFilter(req, res);
    }
  }

  // ---- the request log ----

  static Map<String, Object> recordedHeaders(Request req) {
    Map<String, Object> out = new LinkedHashMap<>();
    Enumeration<String> names = req.getHeaderNames();
    while (names != null && names.hasMoreElements()) {
      String name = names.nextElement();
      String key = name.toLowerCase(Locale.ROOT);
      List<String> values = java.util.Collections.list(req.getHeaders(name));
      if (key.equals("authorization")) {
        List<String> redacted = new java.util.ArrayList<>();
        for (String v : values) {
          int sp = v.indexOf(' ');
          String token = sp < 0 ? "" : v.substring(sp + 1).trim();
          redacted.add(token.isEmpty() ? v.trim() : v.substring(0, sp) + " <redacted len=" + token.length() + ">");
        }
        values = redacted;
      }
      Object previous = out.get(key);
      if (previous == null && values.size() == 1) out.put(key, values.get(0));
      else {
        List<Object> all = new java.util.ArrayList<>();
        if (previous instanceof List) all.addAll((List<?>) previous);
        else if (previous != null) all.add(previous);
        all.addAll(values);
        out.put(key, all);
      }
    }
    return out;
  }

  /** Records every exchange, including those Jetty refuses before any handler (bad messages). */
  static final class Recorder implements HttpChannel.Listener {
    private final GatewayState state;

    Recorder(GatewayState state) {
      this.state = state;
    }

    private GatewayState.Record begin(Request req) {
      GatewayState.Record rec = (GatewayState.Record) req.getAttribute(RECORD_ATTR);
      if (rec != null) return rec;
      rec = state.newRecord();
      rec.method = req.getMethod();
      String uri = req.getHttpURI() == null ? null : req.getHttpURI().getPath();
      rec.path = uri;
      rec.query = req.getHttpURI() == null ? null : req.getHttpURI().getQuery();
      rec.headers = recordedHeaders(req);
      req.setAttribute(RECORD_ATTR, rec);
      return rec;
    }

    @Override
    public void onRequestBegin(Request req) {
      begin(req);
    }

    @Override
    public void onRequestFailure(Request req, Throwable failure) {
      GatewayState.Record rec = begin(req);
      rec.error = failure.toString();
      if (failure instanceof BadMessageException && rec.status == 0) {
        // Refused by Jetty's parser (e.g. 431 for a header over requestHeaderSize): Jetty answers
        // from the exception, not from the Response object, which still says 200.
        BadMessageException bad = (BadMessageException) failure;
        rec.finish(bad.getCode(), bad.getReason() != null ? bad.getReason() : HttpStatus.getMessage(bad.getCode()));
        rec.badMessage = true;
      }
    }

    @Override
    public void onResponseCommit(Request req) {
      GatewayState.Record rec = begin(req);
      if (rec.badMessage) return;
      int status = req.getResponse().getStatus();
      String reason = req.getResponse().getReason();
      rec.finish(status, reason != null ? reason : HttpStatus.getMessage(status));
    }

    @Override
    public void onComplete(Request req) {
      GatewayState.Record rec = (GatewayState.Record) req.getAttribute(RECORD_ATTR);
      if (rec != null && rec.status == 0) {
        int status = req.getResponse().getStatus();
        String reason = req.getResponse().getReason();
        rec.finish(status, reason != null ? reason : HttpStatus.getMessage(status));
      }
    }
  }

  // ---- main ----

  public static void main(String[] args) throws Exception {
    String raw = System.getenv("OZS3_JDKGW_CONFIG");
    if (raw == null) throw new IllegalArgumentException("OZS3_JDKGW_CONFIG is not set");
    Map<String, Object> config = Json.parseObject(raw);
    GatewayState state = new GatewayState(Json.obj(config, "options"));
    boolean debug = Json.bool(config, "debug", false);

    List<String> principals = new java.util.ArrayList<>();
    for (Object p : Json.list(config, "principals")) principals.add(String.valueOf(p));
    String keytab = Json.str(config, "keytab", null);
    Subject subject = serverSubject(keytab, principals, Json.str(config, "login", "keytab"), debug);
    GSSManager gss = Subject.doAs(subject, (PrivilegedExceptionAction<GSSManager>) GSSManager::getInstance);
    // KerberosName's DEFAULT rule compares with the JDK's default realm (krb5.conf default_realm).
    String jdkDefaultRealm = new KerberosPrincipal("x").getRealm();
    HadoopNames.configure(
        Json.str(config, "nameRules", "DEFAULT"), Json.str(config, "ruleMechanism", "hadoop"), jdkDefaultRealm);

    QueuedThreadPool pool = new QueuedThreadPool(24, 2);
    pool.setName("jdkgw");
    pool.setDaemon(true);
    Server server = new Server(pool);
    HttpConfiguration http = new HttpConfiguration();
    http.setRequestHeaderSize((int) Json.num(config, "requestHeaderSize", 65536));
    http.setResponseHeaderSize((int) Json.num(config, "responseHeaderSize", 65536));
    http.setSendServerVersion(false);
    ServerConnector connector = new ServerConnector(server, 1, 1, new HttpConnectionFactory(http));
    connector.setHost(Json.str(config, "host", "127.0.0.1"));
    connector.setPort((int) Json.num(config, "port", 0));
    connector.addBean(new Recorder(state));
    server.addConnector(connector);

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.setContextPath("/");
    context.setErrorHandler(new ErrorPageErrorHandler()); // what a WebAppContext has
    EnumSet<DispatcherType> requests = EnumSet.of(DispatcherType.REQUEST);
    context.addFilter(new FilterHolder(new NoCacheFilter()), "/*", requests);
    context.addFilter(new FilterHolder(new SafetyFilter()), "/*", requests);
    FilterHolder auth = new FilterHolder(new HadoopAuthFilter(state, subject, gss));
    auth.setName("secretAuthentication");
    context.addFilter(auth, "/secret/*", requests);
    context.addServlet(new ServletHolder("secret", new SecretServlet(state)), "/secret/*");
    server.setHandler(context);
    server.start();

    Map<String, Object> ready = new LinkedHashMap<>();
    ready.put("type", "ready");
    ready.put("pid", ProcessHandle.current().pid());
    ready.put("port", connector.getLocalPort());
    ready.put("defaultRealm", jdkDefaultRealm);
    ready.put("jetty", Server.getVersion());
    ready.put("java", System.getProperty("java.runtime.version"));
    ready.put("now", System.currentTimeMillis());
    emit(ready);

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      Map<String, Object> msg;
      try {
        msg = Json.parseObject(line);
      } catch (Exception e) {
        log("bad control line: " + line);
        continue;
      }
      Map<String, Object> reply = new LinkedHashMap<>();
      reply.put("id", msg.get("id"));
      String op = Json.str(msg, "op", "");
      try {
        Object result = null;
        switch (op) {
          case "requests":
            state.awaitSettled(2000);
            result = state.recordsJson();
            break;
          case "secrets":
            result = state.secretsJson();
            break;
          case "setOptions":
            state.setOptions(Json.obj(msg, "options"));
            break;
          case "reset":
            state.reset();
            break;
          case "close":
            break;
          default:
            throw new IllegalArgumentException("unknown op " + op);
        }
        reply.put("ok", true);
        reply.put("result", result);
      } catch (Exception e) {
        reply.put("ok", false);
        reply.put("error", e.toString());
      }
      emit(reply);
      if (op.equals("close")) break;
    }
    // stdin closed (the test process is gone) or close: stop at once, nothing needs cleaning up.
    stdout.flush();
    Runtime.getRuntime().halt(0);
  }

  static {
    Thread.setDefaultUncaughtExceptionHandler((t, e) -> log(t.getName() + ": " + e));
  }
}
