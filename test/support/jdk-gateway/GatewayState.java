/*
 * The JDK-GSS gateway's mutable state: options (replaced as a whole on setOptions), the secret
 * store and the request log. Shared by the Jetty threads and the control loop on stdin.
 */
package ozs3.jdkgw;

import ozs3.common.Json;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

final class GatewayState {
  /** One request as the fixture saw it; written by Jetty threads, read by the control loop. */
  static final class Record {
    final int seq;
    final String time;
    final long startNanos = System.nanoTime();
    volatile String method;
    volatile String path;
    volatile String query;
    volatile Map<String, Object> headers = new LinkedHashMap<>();
    volatile String principal;
    volatile String authVia;
    volatile String user;
    volatile int status;
    volatile String reason = "";
    volatile double durationMs;
    volatile String acceptorTarget;
    volatile String error;
    volatile boolean badMessage;

    Record(int seq) {
      this.seq = seq;
      this.time = Instant.now().toString();
    }

    void finish(int status, String reason) {
      this.status = status;
      this.reason = reason == null ? "" : reason;
      this.durationMs = (System.nanoTime() - startNanos) / 1e6;
    }

    Map<String, Object> toJson() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("seq", seq);
      m.put("time", time);
      m.put("method", method);
      m.put("path", path);
      m.put("query", query);
      m.put("headers", headers);
      m.put("principal", principal);
      m.put("authVia", authVia);
      m.put("user", user);
      m.put("status", status);
      m.put("reason", reason);
      m.put("durationMs", durationMs);
      if (acceptorTarget != null) m.put("acceptorTarget", acceptorTarget);
      if (error != null) m.put("error", error);
      return m;
    }
  }

  private volatile Map<String, Object> options;
  private final Map<String, String> secrets = new LinkedHashMap<>();
  private final List<Record> records = new ArrayList<>();

  GatewayState(Map<String, Object> options) {
    this.options = new LinkedHashMap<>(options);
    secrets.putAll(strings(Json.obj(options, "existingSecrets")));
  }

  static Map<String, String> strings(Map<String, Object> m) {
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<String, Object> e : m.entrySet()) out.put(e.getKey(), String.valueOf(e.getValue()));
    return out;
  }

  Map<String, Object> options() {
    return options;
  }

  boolean bool(String key, boolean def) {
    return Json.bool(options, key, def);
  }

  long num(String key, long def) {
    return Json.num(options, key, def);
  }

  String str(String key, String def) {
    return Json.str(options, key, def);
  }

  List<String> list(String key) {
    List<String> out = new ArrayList<>();
    for (Object o : Json.list(options, key)) out.add(String.valueOf(o));
    return out;
  }

  synchronized void setOptions(Map<String, Object> partial) {
    Map<String, Object> next = new LinkedHashMap<>(options);
    next.putAll(partial);
    options = next;
    if (partial.containsKey("existingSecrets")) secrets.putAll(strings(Json.obj(partial, "existingSecrets")));
  }

  synchronized Record newRecord() {
    Record r = new Record(records.size() + 1);
    records.add(r);
    return r;
  }

  synchronized List<Object> recordsJson() {
    List<Object> out = new ArrayList<>();
    for (Record r : records) out.add(r.toJson());
    return out;
  }

  /** Waits (at most timeoutMs) until every recorded request has its status. */
  void awaitSettled(long timeoutMs) throws InterruptedException {
    long deadline = System.currentTimeMillis() + timeoutMs;
    while (System.currentTimeMillis() < deadline) {
      boolean settled = true;
      synchronized (this) {
        for (Record r : records) if (r.status == 0) settled = false;
      }
      if (settled) return;
      Thread.sleep(5);
    }
  }

  synchronized void reset() {
    records.clear();
    secrets.clear();
    secrets.putAll(strings(Json.obj(options, "existingSecrets")));
  }

  synchronized Map<String, Object> secretsJson() {
    return new LinkedHashMap<>(secrets);
  }

  synchronized boolean hasSecret(String user) {
    return secrets.containsKey(user);
  }

  synchronized void putSecret(String user, String secret) {
    secrets.put(user, secret);
  }

  synchronized boolean removeSecret(String user) {
    return secrets.remove(user) != null;
  }
}
