/*
 * Ozone's S3 secret endpoint (S3SecretManagementEndpoint under the Jersey servlet "secret" on
 * /secret/*, with its S3SecretEnabledEndpointRequestFilter and S3SecretAdminFilter), answering as
 * Jersey 2 does on Jetty 9.4: a response without an entity and a status >= 400 goes out through
 * setStatus(code, reason) + sendError(code, reason), so Jetty writes its HTML error page and the
 * reason phrase (S3_SECRET_ALREADY_EXISTS, S3_SECRET_NOT_FOUND, Forbidden ...) is Jetty's to send.
 * The same contract as gateway-server.mjs (the Node gateway), on a real Jetty.
 */
package ozs3.jdkgw;

import ozs3.common.Json;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Map;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

final class SecretServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private static final Map<Integer, String> JERSEY_REASONS =
      Map.of(
          400, "Bad Request",
          403, "Forbidden",
          404, "Not Found",
          405, "Method Not Allowed",
          500, "Internal Server Error");

  private final transient GatewayState state;
  private final transient SecureRandom random = new SecureRandom();

  SecretServlet(GatewayState state) {
    this.state = state;
  }

  /** A Jersey Response without an entity: ResponseWriter's setStatus + sendError. */
  private static void jerseyError(HttpServletResponse resp, int code, String reason) throws IOException {
    HadoopAuthFilter.setStatusWithReason(resp, code, reason);
    resp.sendError(code, reason);
  }

  private static void jerseyError(HttpServletResponse resp, int code) throws IOException {
    jerseyError(resp, code, JERSEY_REASONS.get(code));
  }

  private static void entity(HttpServletResponse resp, int code, String contentType, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    resp.setStatus(code);
    resp.setContentType(contentType);
    resp.setContentLength(bytes.length);
    resp.getOutputStream().write(bytes);
  }

  /** JAXB escapes &, < and > in text (and CR as &#xD;); quotes stay as they are. */
  private static String xmlText(String s) {
    StringBuilder b = new StringBuilder();
    for (char c : s.toCharArray()) {
      switch (c) {
        case '&': b.append("&amp;"); break;
        case '<': b.append("&lt;"); break;
        case '>': b.append("&gt;"); break;
        case '\r': b.append("&#xD;"); break;
        default: b.append(c);
      }
    }
    return b.toString();
  }

  /** Strict UTF-8 percent-decoding of one path segment ('+' stays '+'). */
  static String decodeSegment(String s) throws CharacterCodingException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '%') {
        if (i + 2 >= s.length()) throw new CharacterCodingException();
        int hi = Character.digit(s.charAt(i + 1), 16);
        int lo = Character.digit(s.charAt(i + 2), 16);
        if (hi < 0 || lo < 0) throw new CharacterCodingException();
        out.write(hi * 16 + lo);
        i += 2;
      } else {
        byte[] bytes = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
        out.write(bytes, 0, bytes.length);
      }
    }
    return StandardCharsets.UTF_8
        .newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT)
        .decode(ByteBuffer.wrap(out.toByteArray()))
        .toString();
  }

  private boolean isAdmin(HttpServletRequest req) {
    String principal = (String) req.getAttribute(HadoopAuthFilter.PRINCIPAL_ATTR);
    String shortName = (String) req.getAttribute(HadoopAuthFilter.USER_ATTR);
    if (principal == null) return false;
    for (String admin : state.list("admins")) {
      // ozone.s3.administrators holds short names ('*' for all); full principals are accepted too,
      // as the other gateway fixtures do.
      if (admin.equals("*") || admin.equals(shortName) || admin.equals(principal)) return true;
    }
    return false;
  }

  @Override
  protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    GatewayState.Record record = JdkGateway.record(req);
    long latency = state.num("latencyMs", 0);
    if (latency > 0) {
      try {
        Thread.sleep(latency);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    String uri = req.getRequestURI(); // raw, not decoded
    String sub = uri.length() > "/secret".length() ? uri.substring("/secret".length()) : "";
    String username = null;
    if (!sub.isEmpty() && !sub.equals("/")) {
      String segment = sub.substring(1);
      if (segment.endsWith("/")) segment = segment.substring(0, segment.length() - 1);
      if (!sub.startsWith("/") || segment.isEmpty() || segment.contains("/")) {
        jerseyError(resp, 404);
        return;
      }
      try {
        username = decodeSegment(segment);
      } catch (CharacterCodingException e) {
        jerseyError(resp, 400);
        return;
      }
    }
    String method = req.getMethod();
    if (method.equals("OPTIONS")) {
      resp.setStatus(200);
      resp.setHeader("Allow", "DELETE,OPTIONS,PUT");
      return;
    }
    if (!method.equals("PUT") && !method.equals("DELETE")) {
      resp.setHeader("Allow", "DELETE,OPTIONS,PUT");
      jerseyError(resp, 405);
      return;
    }
    // Name-bound request filters, after matching and before the resource method.
    if (state.bool("disabled", false)) {
      entity(resp, 400, "text/plain", "S3 Secret endpoint is disabled.");
      return;
    }
    if (state.bool("adminOnly", false) && !isAdmin(req)) {
      jerseyError(resp, 403); // S3SecretAdminFilter (Ozone 2.x, authorization on)
      return;
    }
    if (username != null) {
      if (state.bool("userForm405", false)) {
        jerseyError(resp, 405);
        return;
      }
      if (!isAdmin(req)) {
        jerseyError(resp, 403);
        return;
      }
    }
    String user = username != null ? username : req.getUserPrincipal().getName();
    if (record != null) record.user = user;
    if (method.equals("PUT")) {
      if (state.hasSecret(user)) {
        jerseyError(resp, 400, "S3_SECRET_ALREADY_EXISTS");
        return;
      }
      Map<String, Object> preset = Json.obj(state.options(), "presetSecrets");
      String secret;
      if (preset.containsKey(user)) {
        secret = String.valueOf(preset.get(user));
      } else {
        byte[] bytes = new byte[32];
        random.nextBytes(bytes);
        StringBuilder hex = new StringBuilder();
        for (byte b : bytes) hex.append(String.format("%02x", b & 0xff));
        secret = hex.toString();
      }
      state.putSecret(user, secret);
      entity(
          resp,
          200,
          "application/xml",
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><S3Secret><awsAccessKey>"
              + xmlText(user)
              + "</awsAccessKey><awsSecret>"
              + xmlText(secret)
              + "</awsSecret></S3Secret>");
      return;
    }
    if (!state.removeSecret(user)) {
      jerseyError(resp, 404, "S3_SECRET_NOT_FOUND");
      return;
    }
    resp.setStatus(200);
  }
}
