/*
 * Hadoop's AuthenticationFilter with its KerberosAuthenticationHandler (hadoop-auth 3.4, as Ozone's
 * S3 Gateway web admin server installs it on /secret/* as "secretAuthentication"), rewritten for
 * this fixture on the JDK's GSS. What reaches the wire follows Hadoop's code paths:
 *
 *  - no Authorization, or not "Negotiate": WWW-Authenticate: Negotiate, 401, reason
 *    "Authentication required" (or the cookie's problem), an emptied hadoop.auth cookie;
 *  - the service principal is read from the token's ticket (KerberosUtil.getTokenServerName), must
 *    start with "HTTP/", and an ACCEPT_ONLY credential for exactly that name is made (SPNEGO + krb5
 *    mechanisms) inside Subject.doAs(server subject holding the keytab);
 *  - a GSSException (or any other non-IO failure) becomes AuthenticationException(cause): 403 whose
 *    reason phrase is cause.toString(), through setStatus(403, reason) + sendError(403, reason);
 *  - the client name (getSrcName().toString()) is mapped with auth_to_local: a malformed name is an
 *    IllegalArgumentException (403), KerberosName$NoMatchingRule an IOException that escapes the
 *    filter to Jetty (500);
 *  - on success the mutual token in WWW-Authenticate: Negotiate <token>, the signed hadoop.auth
 *    cookie (u=short&p=principal&t=kerberos&e=expiry&s=HMAC), and the request goes on with the
 *    token as its user principal.
 */
package ozs3.jdkgw;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.PrivilegedActionException;
import java.security.PrivilegedExceptionAction;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.Subject;
import javax.servlet.Filter;
import javax.servlet.FilterChain;
import javax.servlet.FilterConfig;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletRequestWrapper;
import javax.servlet.http.HttpServletResponse;
import org.ietf.jgss.GSSContext;
import org.ietf.jgss.GSSCredential;
import org.ietf.jgss.GSSException;
import org.ietf.jgss.GSSManager;
import org.ietf.jgss.Oid;

final class HadoopAuthFilter implements Filter {
  static final String PRINCIPAL_ATTR = "ozs3.principal";
  static final String USER_ATTR = "ozs3.shortName";

  static final Oid SPNEGO;
  static final Oid KRB5;
  static final Oid NT_KRB5_PRINCIPAL;

  static {
    try {
      SPNEGO = new Oid("1.3.6.1.5.5.2");
      KRB5 = new Oid("1.2.840.113554.1.2.2");
      NT_KRB5_PRINCIPAL = new Oid("1.2.840.113554.1.2.2.1");
    } catch (GSSException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  /** org.apache.hadoop.security.authentication.client.AuthenticationException. */
  static final class AuthenticationException extends Exception {
    AuthenticationException(String msg) {
      super(msg);
    }

    AuthenticationException(Throwable cause) {
      super(cause); // message = cause.toString()
    }
  }

  /** AuthenticationToken: user (short name), principal, type, expiry. */
  record Token(String userName, String principal, long expires, String via) {}

  private final GatewayState state;
  private final Subject serverSubject;
  private final GSSManager gss;
  private final byte[] signingKey = new byte[32];

  HadoopAuthFilter(GatewayState state, Subject serverSubject, GSSManager gss) {
    this.state = state;
    this.serverSubject = serverSubject;
    this.gss = gss;
    new SecureRandom().nextBytes(signingKey);
  }

  @Override
  public void init(FilterConfig config) {}

  @Override
  public void destroy() {}

  @Override
  public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    HttpServletRequest req = (HttpServletRequest) request;
    HttpServletResponse resp = (HttpServletResponse) response;
    // S3GatewayWebAdminServer installs this filter only when ozone.s3g.secret.http.enabled is true.
    if (state.bool("disabled", false)) {
      chain.doFilter(request, response);
      return;
    }
    GatewayState.Record record = JdkGateway.record(req);
    boolean unauthorized = true;
    int errCode = HttpServletResponse.SC_UNAUTHORIZED;
    String problem = null;
    try {
      boolean newToken = false;
      Token token;
      try {
        token = tokenFromCookie(req);
      } catch (AuthenticationException e) {
        problem = e.getMessage(); // "will be sent back in a 401 unless filter authenticates"
        token = null;
      }
      if (token == null) {
        token = authenticate(req, resp, record);
        newToken = true;
      }
      if (token != null) {
        unauthorized = false;
        if (record != null) {
          record.principal = token.principal();
          record.authVia = token.via();
        }
        if (newToken && state.bool("setCookie", true)) {
          long expires = System.currentTimeMillis() + state.num("cookieValiditySec", 36000) * 1000;
          String raw = "u=" + token.userName() + "&p=" + token.principal() + "&t=kerberos&e=" + expires;
          addAuthCookie(resp, raw + "&s=" + sign(raw));
        }
        final Token authToken = token;
        req.setAttribute(PRINCIPAL_ATTR, token.principal());
        req.setAttribute(USER_ATTR, token.userName());
        HttpServletRequest wrapped =
            new HttpServletRequestWrapper(req) {
              @Override
              public String getAuthType() {
                return "kerberos";
              }

              @Override
              public String getRemoteUser() {
                return authToken.userName();
              }

              @Override
              public java.security.Principal getUserPrincipal() {
                return authToken::principal;
              }
            };
        chain.doFilter(wrapped, resp);
      }
    } catch (AuthenticationException e) {
      // "exception from the filter itself is fatal"
      errCode = HttpServletResponse.SC_FORBIDDEN;
      problem = e.getMessage();
      if (record != null) record.error = e.getCause() != null ? e.getCause().toString() : e.getMessage();
    } catch (IOException | RuntimeException e) {
      if (record != null) record.error = e.toString();
      throw e;
    }
    if (unauthorized && !resp.isCommitted()) {
      addAuthCookie(resp, "");
      if (errCode == HttpServletResponse.SC_UNAUTHORIZED && !resp.containsHeader("WWW-Authenticate")) {
        errCode = HttpServletResponse.SC_FORBIDDEN;
      }
      String reason = problem == null ? "Authentication required" : problem;
      // As Hadoop does since Jetty 9.4.21: setStatus for the reason phrase, then sendError.
      setStatusWithReason(resp, errCode, reason);
      resp.sendError(errCode, reason);
    }
  }

  @SuppressWarnings("deprecation")
  static void setStatusWithReason(HttpServletResponse resp, int code, String reason) {
    resp.setStatus(code, reason);
  }

  /** KerberosAuthenticationHandler.authenticate. */
  private Token authenticate(HttpServletRequest req, HttpServletResponse resp, GatewayState.Record record)
      throws IOException, AuthenticationException {
    String authorization = req.getHeader("Authorization");
    if (authorization == null || !authorization.startsWith("Negotiate")) {
      resp.setHeader("WWW-Authenticate", "Negotiate");
      resp.setStatus(HttpServletResponse.SC_UNAUTHORIZED);
      return null;
    }
    String encoded = authorization.substring("Negotiate".length()).trim();
    // commons-codec Base64(0).decode skips whatever is not base64; the MIME decoder does the same.
    byte[] clientToken = Base64.getMimeDecoder().decode(encoded.getBytes(StandardCharsets.ISO_8859_1));
    try {
      String serverPrincipal = HadoopNames.tokenServerName(clientToken);
      if (record != null) record.acceptorTarget = serverPrincipal;
      if (!serverPrincipal.startsWith("HTTP/")) {
        throw new IllegalArgumentException(
            "Invalid server principal " + serverPrincipal + "decoded from client request");
      }
      return Subject.doAs(
          serverSubject,
          (PrivilegedExceptionAction<Token>) () -> runWithPrincipal(serverPrincipal, clientToken, resp));
    } catch (PrivilegedActionException e) {
      if (e.getException() instanceof IOException) throw (IOException) e.getException();
      throw new AuthenticationException(e.getException());
    } catch (Exception e) {
      throw new AuthenticationException(e);
    }
  }

  private Token runWithPrincipal(String serverPrincipal, byte[] clientToken, HttpServletResponse resp)
      throws IOException, GSSException {
    GSSContext context = null;
    GSSCredential creds = null;
    try {
      creds =
          gss.createCredential(
              gss.createName(serverPrincipal, NT_KRB5_PRINCIPAL),
              GSSCredential.INDEFINITE_LIFETIME,
              new Oid[] {SPNEGO, KRB5},
              GSSCredential.ACCEPT_ONLY);
      context = gss.createContext(creds);
      byte[] serverToken = context.acceptSecContext(clientToken, 0, clientToken.length);
      if (serverToken != null && serverToken.length > 0 && state.bool("mutual", true)) {
        resp.setHeader("WWW-Authenticate", "Negotiate " + Base64.getEncoder().encodeToString(serverToken));
      }
      if (!context.isEstablished()) {
        resp.setStatus(HttpServletResponse.SC_UNAUTHORIZED);
        return null;
      }
      String clientPrincipal = context.getSrcName().toString();
      String userName = HadoopNames.shortName(clientPrincipal);
      resp.setStatus(HttpServletResponse.SC_OK);
      return new Token(userName, clientPrincipal, -1, "negotiate");
    } finally {
      if (context != null) context.dispose();
      if (creds != null) creds.dispose();
    }
  }

  // ---- the hadoop.auth cookie (AuthenticationFilter.getToken / createAuthCookie, Signer) ----

  private String sign(String raw) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(signingKey, "HmacSHA256"));
      return Base64.getEncoder().encodeToString(mac.doFinal(raw.getBytes(StandardCharsets.UTF_8)));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private Token tokenFromCookie(HttpServletRequest req) throws AuthenticationException {
    Cookie[] cookies = req.getCookies();
    if (cookies == null) return null;
    String value = null;
    for (Cookie c : cookies) {
      if (!"hadoop.auth".equals(c.getName())) continue;
      value = c.getValue();
      if (value.isEmpty()) throw new AuthenticationException("Unauthorized access");
      int at = value.lastIndexOf("&s=");
      if (at < 0) {
        throw new AuthenticationException(
            "org.apache.hadoop.security.authentication.util.SignerException: Invalid signed text: " + value);
      }
      String raw = value.substring(0, at);
      byte[] given = value.substring(at + 3).getBytes(StandardCharsets.UTF_8);
      if (!MessageDigest.isEqual(given, sign(raw).getBytes(StandardCharsets.UTF_8))) {
        throw new AuthenticationException(
            "org.apache.hadoop.security.authentication.util.SignerException: Invalid signature");
      }
      value = raw;
      break;
    }
    if (value == null) return null;
    Map<String, String> fields = new LinkedHashMap<>();
    for (String part : value.split("&")) {
      int eq = part.indexOf('=');
      if (eq > 0) fields.put(part.substring(0, eq), part.substring(eq + 1));
    }
    if (!fields.containsKey("u") || !fields.containsKey("p") || !fields.containsKey("t") || !fields.containsKey("e")) {
      throw new AuthenticationException("Invalid token string, missing attributes");
    }
    if (!"kerberos".equals(fields.get("t"))) throw new AuthenticationException("Invalid AuthenticationToken type");
    long expires = Long.parseLong(fields.get("e"));
    if (expires != -1 && expires < System.currentTimeMillis()) {
      throw new AuthenticationException("AuthenticationToken expired");
    }
    return new Token(fields.get("u"), fields.get("p"), expires, "cookie");
  }

  private void addAuthCookie(HttpServletResponse resp, String token) {
    StringBuilder b = new StringBuilder("hadoop.auth=");
    if (!token.isEmpty()) b.append('"').append(token).append('"');
    String path = state.str("cookiePath", null);
    if (path != null) b.append("; Path=").append(path);
    b.append("; HttpOnly");
    resp.addHeader("Set-Cookie", b.toString());
  }
}
