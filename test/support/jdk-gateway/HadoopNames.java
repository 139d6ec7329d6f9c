/*
 * Name handling as hadoop-auth does it on the server side, rewritten for this fixture (no Hadoop
 * code or jar): the auth_to_local rules of org.apache.hadoop.security.authentication.util.KerberosName
 * (DEFAULT and RULE:[n:fmt](match)s/from/to/g/L, mechanism "hadoop" or "mit"), and
 * KerberosUtil.getTokenServerName, which reads the service principal out of the AP-REQ ticket in a
 * SPNEGO or raw Kerberos token before any key is used.
 *
 * The exceptions print as Hadoop's do (their toString() carries Hadoop's class names), because that
 * text is what reaches the client: in a 403 reason phrase, or in Jetty's 500 error page.
 */
package ozs3.jdkgw;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

final class HadoopNames {
  private HadoopNames() {}

  /** KerberosName$NoMatchingRule: an IOException, so the filter lets it escape to Jetty (500). */
  static final class NoMatchingRule extends IOException {
    NoMatchingRule(String msg) {
      super(msg);
    }

    @Override
    public String toString() {
      return "org.apache.hadoop.security.authentication.util.KerberosName$NoMatchingRule: " + getMessage();
    }
  }

  /** KerberosName$BadFormatString (a rule refers to a component the name does not have). */
  static final class BadFormatString extends IOException {
    BadFormatString(String msg) {
      super(msg);
    }

    @Override
    public String toString() {
      return "org.apache.hadoop.security.authentication.util.KerberosName$BadFormatString: " + getMessage();
    }
  }

  // ---- auth_to_local ----

  /** At most two components and a realm; neither part may hold '/' or '@'. */
  private static final Pattern NAME = Pattern.compile("([^/@]+)(?:/([^/@]+))?(?:@([^/@]+))?");
  private static final Pattern RULE =
      Pattern.compile(
          "\\s*(?:(DEFAULT)|RULE:\\[(\\d*):([^\\]]*)](?:\\(([^)]*)\\))?(?:s/([^/]*)/([^/]*)/(g)?)?)/?(L)?");
  private static final Pattern PARAM = Pattern.compile("([^$]*)(\\$(\\d*))?");
  private static final Pattern NON_SIMPLE = Pattern.compile("[/@]");

  private static volatile List<Rule> rules = parseRules("DEFAULT");
  private static volatile String mechanism = "hadoop";
  private static volatile String defaultRealm = "";

  static void configure(String ruleText, String ruleMechanism, String realm) {
    List<Rule> parsed = parseRules(ruleText == null || ruleText.isBlank() ? "DEFAULT" : ruleText);
    if (ruleMechanism != null
        && !ruleMechanism.equalsIgnoreCase("hadoop")
        && !ruleMechanism.equalsIgnoreCase("mit")) {
      throw new IllegalArgumentException("Invalid rule mechanism: " + ruleMechanism);
    }
    rules = parsed;
    mechanism = ruleMechanism == null ? "hadoop" : ruleMechanism;
    defaultRealm = realm == null ? "" : realm;
  }

  static String defaultRealm() {
    return defaultRealm;
  }

  private static final class Rule {
    final boolean isDefault;
    final int components;
    final String format;
    final Pattern match;
    final Pattern from;
    final String to;
    final boolean global;
    final boolean lower;

    Rule() {
      isDefault = true;
      components = 0;
      format = null;
      match = null;
      from = null;
      to = null;
      global = false;
      lower = false;
    }

    Rule(int components, String format, String match, String from, String to, boolean global, boolean lower) {
      this.isDefault = false;
      this.components = components;
      this.format = format;
      this.match = match == null ? null : Pattern.compile(match);
      this.from = from == null ? null : Pattern.compile(from);
      this.to = to;
      this.global = global;
      this.lower = lower;
    }

    @Override
    public String toString() {
      if (isDefault) return "DEFAULT";
      StringBuilder b = new StringBuilder("RULE:[").append(components).append(':').append(format).append(']');
      if (match != null) b.append('(').append(match).append(')');
      if (from != null) b.append("s/").append(from).append('/').append(to).append('/').append(global ? "g" : "");
      if (lower) b.append("/L");
      return b.toString();
    }

    String apply(String[] params) throws IOException {
      String result = null;
      if (isDefault) {
        if (defaultRealm.equals(params[0])) result = params[1];
      } else if (params.length - 1 == components) {
        String base = substitute(format, params);
        if (match == null || match.matcher(base).matches()) {
          if (from == null) result = base;
          else result = global ? from.matcher(base).replaceAll(to) : from.matcher(base).replaceFirst(to);
        }
      }
      if (result != null && NON_SIMPLE.matcher(result).find() && mechanism.equalsIgnoreCase("hadoop")) {
        throw new NoMatchingRule("Non-simple name " + result + " after auth_to_local rule " + this);
      }
      if (lower && result != null) result = result.toLowerCase(Locale.ENGLISH);
      return result;
    }
  }

  /** $0 is the realm, $1.. the components. */
  private static String substitute(String format, String[] params) throws BadFormatString {
    Matcher m = PARAM.matcher(format);
    int start = 0;
    StringBuilder out = new StringBuilder();
    while (start < format.length() && m.find(start)) {
      out.append(m.group(1));
      String index = m.group(3);
      if (index != null) {
        try {
          int n = Integer.parseInt(index);
          if (n < 0 || n >= params.length) {
            throw new BadFormatString(
                "index " + n + " from " + format + " is outside of the valid range 0 to " + (params.length - 1));
          }
          out.append(params[n]);
        } catch (NumberFormatException e) {
          throw new BadFormatString("bad format in username mapping in " + index);
        }
      }
      start = m.end();
    }
    return out.toString();
  }

  private static List<Rule> parseRules(String text) {
    List<Rule> out = new ArrayList<>();
    String rest = text.trim();
    while (!rest.isEmpty()) {
      Matcher m = RULE.matcher(rest);
      if (!m.lookingAt()) throw new IllegalArgumentException("Invalid rule: " + rest);
      if (m.group(1) != null) {
        out.add(new Rule());
      } else {
        out.add(
            new Rule(
                Integer.parseInt(m.group(2)),
                m.group(3),
                m.group(4),
                m.group(5),
                m.group(6),
                "g".equals(m.group(7)),
                "L".equals(m.group(8))));
      }
      rest = rest.substring(m.end());
    }
    return out;
  }

  /** new KerberosName(name).getShortName(), with its exceptions. */
  static String shortName(String name) throws IOException {
    Matcher m = NAME.matcher(name);
    String service;
    String host = null;
    String realm = null;
    if (!m.matches()) {
      if (name.contains("@")) throw new IllegalArgumentException("Malformed Kerberos name: " + name);
      service = name;
    } else {
      service = m.group(1);
      host = m.group(2);
      realm = m.group(3);
    }
    if (host == null && realm == null) return service;
    String[] params = host == null ? new String[] {realm, service} : new String[] {realm, service, host};
    for (Rule r : rules) {
      String result = r.apply(params);
      if (result != null) return result;
    }
    String full = service + (host == null ? "" : "/" + host) + (realm == null ? "" : "@" + realm);
    if (mechanism.equalsIgnoreCase("hadoop")) throw new NoMatchingRule("No rules applied to " + full);
    return full;
  }

  // ---- the service principal named in a token (KerberosUtil.getTokenServerName) ----

  private static final byte[] SPNEGO_OID = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x02};
  private static final byte[] KRB5_OID = {0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x12, 0x01, 0x02, 0x02};

  /** A DER element walked as hadoop-auth's decoder walks it (same traversal, same failures). */
  private static final class Der {
    final int tag;
    final ByteBuffer bb;

    Der(ByteBuffer src) {
      tag = src.get() & 0xff;
      int length = src.get();
      if ((length & 0x80) != 0) {
        int octets = length & 0x7f;
        length = 0;
        for (int i = 0; i < octets; i++) length = (length << 8) | (src.get() & 0xff);
      }
      bb = src.slice();
      bb.limit(length);
      src.position(src.position() + length);
    }

    boolean hasNext() {
      return ((tag & 0x30) != 0 || tag == 0x04) && bb.hasRemaining();
    }

    Der next() {
      if (!hasNext()) throw new NoSuchElementException();
      return new Der(bb);
    }

    Der get(int... tags) {
      Der der = this;
      for (int i = 0; i < tags.length; i++) {
        if (der.tag != tags[i]) {
          Der found = null;
          while (der.hasNext()) {
            Der child = der.next();
            if (child.tag == tags[i]) {
              found = child;
              break;
            }
          }
          der = found;
        }
        if (der == null) {
          StringBuilder b = new StringBuilder("Tag not found:");
          for (int k = 0; k <= i; k++) b.append(" 0x").append(Integer.toHexString(tags[k]));
          throw new IllegalStateException(b.toString());
        }
      }
      return der;
    }

    boolean isOid(byte[] oid) {
      return tag == 0x06 && bb.equals(ByteBuffer.wrap(oid));
    }

    String text() {
      return new String(bb.array(), bb.arrayOffset() + bb.position(), bb.remaining(), StandardCharsets.UTF_8);
    }
  }

  static String tokenServerName(byte[] raw) {
    Der token = new Der(ByteBuffer.wrap(raw));
    Der oid = token.next();
    if (oid.isOid(SPNEGO_OID)) {
      token = token.next().get(0xa0, 0x30, 0xa2, 0x04).next();
      oid = token.next();
    }
    if (!oid.isOid(KRB5_OID)) throw new IllegalArgumentException("Malformed gss token");
    if (token.next().tag != 1) throw new IllegalArgumentException("Not an AP-REQ token");
    Der ticket = token.next().get(0x6e, 0x30, 0xa3, 0x61, 0x30);
    String realm = ticket.get(0xa1, 0x1b).text();
    Der names = ticket.get(0xa2, 0x30, 0xa1, 0x30);
    StringBuilder b = new StringBuilder();
    while (names.hasNext()) {
      if (b.length() > 0) b.append('/');
      b.append(names.next().text());
    }
    return b.append('@').append(realm).toString();
  }
}
