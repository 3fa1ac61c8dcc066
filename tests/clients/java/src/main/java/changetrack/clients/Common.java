package changetrack.clients;

import java.util.Base64;
import java.util.Locale;

import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;

/**
 * What both drivers share: the command line of ../README.md, the JSON-lines output, exit codes
 * and the mapping of client exceptions to error kinds.
 */
final class Common {
    static final int EXIT_OK = 0;
    static final int EXIT_OTHER = 1;
    static final int EXIT_USAGE = 2;
    static final int EXIT_AUTH = 3;
    static final int EXIT_GROUP_AUTH = 4;
    static final int EXIT_NO_OFFSET = 5;

    /** Without --run-seconds a driver gives up after this (error "other", exit 1). */
    static final long DEFAULT_GIVE_UP_MS = 120_000;
    /** Authentication failures must be reported within this. */
    static final long AUTH_DEADLINE_MS = 30_000;
    /** One blocking client call (offsetsForTimes, committed, commitSync, endOffsets). */
    static final long REQUEST_TIMEOUT_MS = 20_000;

    private Common() {}

    // --- command line ------------------------------------------------------------------------

    static final class Args {
        String client;
        String bootstrap;
        String topic;
        String user;
        String group;
        /** group.id when it differs from the group of the credentials (--group-id). */
        String groupIdOverride;
        String mode = "assign";
        String startKind = "committed"; // earliest latest committed time-s time-ms offset
        long startValue;
        boolean untilEnd;
        long maxRecords = -1;
        double runSeconds = -1;
        boolean commit;
        String clientId;
        int sessionTimeoutMs = -1;
        boolean noSasl;
        String password;
        boolean debug;

        String username() {
            return user + "-" + group;
        }

        String groupId() {
            return groupIdOverride != null ? groupIdOverride : group;
        }

        long limitMs() {
            return runSeconds >= 0 ? (long) (runSeconds * 1000) : DEFAULT_GIVE_UP_MS;
        }
    }

    static final class UsageException extends Exception {
        UsageException(String m) {
            super(m);
        }
    }

    static final String USAGE = "consume --bootstrap HOST:PORT --topic NAME --user USER --group GROUP_ID"
            + " [--mode assign|subscribe] [--start earliest|latest|committed|time-s:SECS|time-ms:MS|offset:N]"
            + " [--until-end] [--max-records N] [--run-seconds S] [--commit] [--client-id ID]"
            + " [--session-timeout-ms MS] [--no-sasl] [--group-id ID]";

    static Args parse(String client, String[] argv) throws UsageException {
        Args a = new Args();
        a.client = client;
        if (argv.length < 1 || !argv[0].equals("consume")) {
            throw new UsageException("the first argument must be 'consume'");
        }
        for (int i = 1; i < argv.length; i++) {
            String o = argv[i];
            switch (o) {
                case "--until-end": a.untilEnd = true; continue;
                case "--commit": a.commit = true; continue;
                case "--no-sasl": a.noSasl = true; continue;
                default: break;
            }
            if (i + 1 >= argv.length) {
                throw new UsageException("missing value for " + o);
            }
            String v = argv[++i];
            try {
                switch (o) {
                    case "--bootstrap": a.bootstrap = v; break;
                    case "--topic": a.topic = v; break;
                    case "--user": a.user = v; break;
                    case "--group": a.group = v; break;
                    case "--group-id": a.groupIdOverride = v; break;
                    case "--mode":
                        if (!v.equals("assign") && !v.equals("subscribe")) {
                            throw new UsageException("--mode must be assign or subscribe: " + v);
                        }
                        a.mode = v;
                        break;
                    case "--start": parseStart(a, v); break;
                    case "--max-records": a.maxRecords = Long.parseLong(v); break;
                    case "--run-seconds": a.runSeconds = Double.parseDouble(v); break;
                    case "--client-id": a.clientId = v; break;
                    case "--session-timeout-ms": a.sessionTimeoutMs = Integer.parseInt(v); break;
                    default: throw new UsageException("unknown option " + o);
                }
            } catch (NumberFormatException e) {
                throw new UsageException("bad number for " + o + ": " + v);
            }
        }
        if (a.bootstrap == null || a.topic == null || a.user == null || a.group == null) {
            throw new UsageException("--bootstrap, --topic, --user and --group are required");
        }
        a.password = System.getenv().getOrDefault("CT_KAFKA_PASSWORD", "");
        String dbg = System.getenv("CT_DRIVER_DEBUG");
        a.debug = dbg != null && !dbg.isEmpty() && !dbg.equals("0");
        return a;
    }

    private static void parseStart(Args a, String v) throws UsageException {
        switch (v) {
            case "earliest":
            case "latest":
            case "committed":
                a.startKind = v;
                return;
            default:
                break;
        }
        for (String kind : new String[] {"time-s", "time-ms", "offset"}) {
            if (v.startsWith(kind + ":")) {
                a.startKind = kind;
                a.startValue = Long.parseLong(v.substring(kind.length() + 1));
                return;
            }
        }
        throw new UsageException("bad --start " + v);
    }

    // --- output ------------------------------------------------------------------------------

    /** One JSON object, built field by field. */
    static final class Json {
        private final StringBuilder sb = new StringBuilder("{");

        Json(String event) {
            str("event", event);
        }

        private void key(String k) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            quote(sb, k);
            sb.append(':');
        }

        Json num(String k, Long v) {
            key(k);
            sb.append(v == null ? "null" : Long.toString(v));
            return this;
        }

        Json str(String k, String v) {
            key(k);
            if (v == null) {
                sb.append("null");
            } else {
                quote(sb, v);
            }
            return this;
        }

        Json raw(String k, String json) {
            key(k);
            sb.append(json);
            return this;
        }

        @Override
        public String toString() {
            return sb.toString() + "}";
        }
    }

    static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    /** Writes one line to stdout and flushes it (stdout is only ever used from here). */
    static synchronized void emit(Json j) {
        System.out.print(j.toString() + "\n");
        System.out.flush();
    }

    static void log(String msg) {
        System.err.println("driver: " + msg);
        System.err.flush();
    }

    static String b64(byte[] data) {
        return data == null ? null : Base64.getEncoder().encodeToString(data);
    }

    // --- errors ------------------------------------------------------------------------------

    /** Stops the driver with an exit code, after an error event when kind is not null. */
    static final class DriverExit extends RuntimeException {
        final int code;
        final String kind;

        DriverExit(int code, String kind, String message) {
            super(message);
            this.code = code;
            this.kind = kind;
        }
    }

    static DriverExit fail(String kind, String message) {
        return new DriverExit(codeOf(kind), kind, message);
    }

    static int codeOf(String kind) {
        switch (kind) {
            case "auth": return EXIT_AUTH;
            case "group_auth": return EXIT_GROUP_AUTH;
            default: return EXIT_OTHER;
        }
    }

    /** auth | group_auth | other, from the exception or any of its causes. */
    static String classify(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof AuthenticationException) { // SaslAuthenticationException and others
                return "auth";
            }
            if (c instanceof GroupAuthorizationException) {
                return "group_auth";
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return "other";
    }

    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            if (c.getCause() == c) {
                break;
            }
        }
        return sb.toString();
    }

    /** Set by a driver's SIGTERM shutdown hook: the hook ends the JVM (exit 143) when it is done. */
    static volatile boolean terminating;

    /** Prints the error event (if any) and ends the JVM with the exit's code. */
    static void finish(DriverExit e) {
        if (terminating && e.code != 143) {
            // what went wrong is the shutdown itself: let the SIGTERM hook finish
            while (true) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException ie) {
                    // keep waiting
                }
            }
        }
        if (e.kind != null) {
            emit(new Json("error").str("kind", e.kind).str("message", e.getMessage()));
        }
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(e.code);
    }

    /** Turns on DEBUG logging of every request the Kafka client sends (CT_DRIVER_DEBUG=1). */
    static void debugLogging(boolean on) {
        if (on) {
            org.apache.log4j.Logger.getLogger("org.apache.kafka.clients.NetworkClient")
                    .setLevel(org.apache.log4j.Level.DEBUG);
            // the SASL exchange (ApiVersions, SaslHandshake, SaslAuthenticate before NetworkClient)
            org.apache.log4j.Logger.getLogger("org.apache.kafka.common.security.authenticator")
                    .setLevel(org.apache.log4j.Level.DEBUG);
        }
    }
}
