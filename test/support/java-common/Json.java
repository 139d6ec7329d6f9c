/*
 * Minimal JSON reader/writer for the Java test fixtures (OM server and client, JDK-GSS gateway),
 * with no dependency beyond the JDK: their control channels speak JSON lines.
 * Objects read as LinkedHashMap<String, Object>, arrays as ArrayList<Object>, integers as Long,
 * other numbers as Double, plus String, Boolean and null.
 */
package ozs3.common;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public final class Json {
  private final String s;
  private int i;

  private Json(String s) {
    this.s = s;
  }

  public static Object parse(String text) {
    Json p = new Json(text);
    p.ws();
    Object v = p.value();
    p.ws();
    if (p.i != p.s.length()) throw p.err("trailing characters");
    return v;
  }

  @SuppressWarnings("unchecked")
  public static Map<String, Object> parseObject(String text) {
    Object v = parse(text);
    if (!(v instanceof Map)) throw new IllegalArgumentException("JSON object expected");
    return (Map<String, Object>) v;
  }

  private IllegalArgumentException err(String what) {
    return new IllegalArgumentException("bad JSON at " + i + ": " + what);
  }

  private void ws() {
    while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
  }

  private Object value() {
    if (i >= s.length()) throw err("unexpected end");
    char c = s.charAt(i);
    switch (c) {
      case '{': {
        i++;
        Map<String, Object> m = new LinkedHashMap<>();
        ws();
        if (peek('}')) return m;
        do {
          ws();
          String k = string();
          ws();
          expect(':');
          ws();
          m.put(k, value());
          ws();
        } while (peek(','));
        expect('}');
        return m;
      }
      case '[': {
        i++;
        List<Object> l = new ArrayList<>();
        ws();
        if (peek(']')) return l;
        do {
          ws();
          l.add(value());
          ws();
        } while (peek(','));
        expect(']');
        return l;
      }
      case '"':
        return string();
      case 't':
        return word("true", Boolean.TRUE);
      case 'f':
        return word("false", Boolean.FALSE);
      case 'n':
        return word("null", null);
      default:
        return number();
    }
  }

  private boolean peek(char c) {
    if (i < s.length() && s.charAt(i) == c) {
      i++;
      return true;
    }
    return false;
  }

  private void expect(char c) {
    if (!peek(c)) throw err("expected '" + c + "'");
  }

  private Object word(String w, Object v) {
    if (!s.startsWith(w, i)) throw err("expected " + w);
    i += w.length();
    return v;
  }

  private Object number() {
    int start = i;
    boolean integer = true;
    while (i < s.length()) {
      char c = s.charAt(i);
      if ((c >= '0' && c <= '9') || c == '-' || c == '+') {
        i++;
      } else if (c == '.' || c == 'e' || c == 'E') {
        integer = false;
        i++;
      } else {
        break;
      }
    }
    String t = s.substring(start, i);
    if (t.isEmpty()) throw err("unexpected character");
    return integer ? (Object) Long.parseLong(t) : (Object) Double.parseDouble(t);
  }

  private String string() {
    expect('"');
    StringBuilder b = new StringBuilder();
    while (true) {
      if (i >= s.length()) throw err("unterminated string");
      char c = s.charAt(i++);
      if (c == '"') return b.toString();
      if (c != '\\') {
        b.append(c);
        continue;
      }
      char e = s.charAt(i++);
      switch (e) {
        case 'n': b.append('\n'); break;
        case 't': b.append('\t'); break;
        case 'r': b.append('\r'); break;
        case 'b': b.append('\b'); break;
        case 'f': b.append('\f'); break;
        case 'u':
          b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
          i += 4;
          break;
        default: b.append(e);
      }
    }
  }

  public static String write(Object v) {
    StringBuilder b = new StringBuilder();
    write(b, v);
    return b.toString();
  }

  private static void write(StringBuilder b, Object v) {
    if (v == null) {
      b.append("null");
    } else if (v instanceof String) {
      quote(b, (String) v);
    } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) {
      b.append(v);
    } else if (v instanceof Number) {
      double d = ((Number) v).doubleValue();
      b.append(Double.isFinite(d) ? Double.toString(d) : "null");
    } else if (v instanceof Map) {
      b.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (!first) b.append(',');
        first = false;
        quote(b, String.valueOf(e.getKey()));
        b.append(':');
        write(b, e.getValue());
      }
      b.append('}');
    } else if (v instanceof Collection) {
      b.append('[');
      boolean first = true;
      for (Object o : (Collection<?>) v) {
        if (!first) b.append(',');
        first = false;
        write(b, o);
      }
      b.append(']');
    } else {
      quote(b, v.toString());
    }
  }

  private static void quote(StringBuilder b, String s) {
    b.append('"');
    for (int k = 0; k < s.length(); k++) {
      char c = s.charAt(k);
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        case '\n': b.append("\\n"); break;
        case '\r': b.append("\\r"); break;
        case '\t': b.append("\\t"); break;
        default:
          if (c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x2028 || c == 0x2029) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
      }
    }
    b.append('"');
  }

  // Typed accessors for config maps.
  public static String str(Map<String, Object> m, String k, String def) {
    Object v = m.get(k);
    return v == null ? def : v.toString();
  }

  public static long num(Map<String, Object> m, String k, long def) {
    Object v = m.get(k);
    return v instanceof Number ? ((Number) v).longValue() : def;
  }

  public static boolean bool(Map<String, Object> m, String k, boolean def) {
    Object v = m.get(k);
    return v instanceof Boolean ? (Boolean) v : def;
  }

  @SuppressWarnings("unchecked")
  public static Map<String, Object> obj(Map<String, Object> m, String k) {
    Object v = m.get(k);
    return v instanceof Map ? (Map<String, Object>) v : new LinkedHashMap<>();
  }

  @SuppressWarnings("unchecked")
  public static List<Object> list(Map<String, Object> m, String k) {
    Object v = m.get(k);
    if (v instanceof List) return (List<Object>) v;
    List<Object> l = new ArrayList<>();
    if (v != null) l.add(v);
    return l;
  }
}
