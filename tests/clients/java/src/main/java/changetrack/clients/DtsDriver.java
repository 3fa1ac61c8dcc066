package changetrack.clients;

import static changetrack.clients.Common.*;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.log4j.Level;

import com.aliyun.dts.subscribe.clients.ConsumerContext;
import com.aliyun.dts.subscribe.clients.DefaultDTSConsumer;
import com.aliyun.dts.subscribe.clients.common.RecordListener;
import com.aliyun.dts.subscribe.clients.formats.avro.Record;
import com.aliyun.dts.subscribe.clients.record.DefaultUserRecord;

/**
 * The contract of ../README.md with the DTS consumer SDK (com.aliyun.dts:dts-new-subscribe-sdk
 * 2.0.0, which runs kafka-clients 2.7.0 itself): ConsumerContext + DefaultDTSConsumer + a
 * RecordListener, as Alibaba's demos use it.
 *
 * <pre>run.sh dts consume --bootstrap H:P --topic T --user U --group G [options]</pre>
 *
 * Mapping (see NOTES.md for the SDK facts behind it):
 * <ul>
 * <li>--start time-s:N / time-ms:N: initCheckpoint "N" with setForceUseCheckpoint(true): the SDK
 *     calls offsetsForTimes(N) (the number as is). earliest: checkpoint "0", forced. committed:
 *     checkpoint "0", not forced: the SDK reads the group's committed offset and seeks by the
 *     timestamp in its metadata (offsetsForTimes again), else uses "0". latest and offset:N cannot
 *     be expressed with the SDK (exit 1).
 * <li>--mode: ConsumerSubscribeMode.ASSIGN / SUBSCRIBE.
 * <li>--commit: record.commit(sourceTimestamp) for every record; the SDK commits asynchronously
 *     every 5 s (offset = the record's own offset, metadata = its sourceTimestamp). committed
 *     events are printed when the SDK logs the commit's success; a clean exit waits (up to 15 s)
 *     for the commit of the last record.
 * <li>--until-end: the end offset comes from a separate plain KafkaConsumer (ListOffsets only;
 *     the SDK does not expose its consumer); the driver stops when the last record read is at
 *     end - 1, or when the SDK's consumer reports records-lag 0 with its queues empty.
 * <li>--no-sasl is not possible (the SDK always sets SASL_PLAINTEXT/PLAIN): exit 1.
 * </ul>
 * The SDK's local checkpoint file (localCheckpointStore-GROUP in the working directory) is turned
 * off, so that a restart resumes from the group's committed offset on the broker.
 */
public final class DtsDriver implements DtsLogTap.Handler {
    private final Args a;
    private final long t0 = System.currentTimeMillis();
    private final Object lock = new Object();

    private ConsumerContext ctx;
    private TapConsumer consumer;
    private Thread startThread;
    private volatile Throwable startError;
    private volatile boolean startReturned;

    private volatile DriverExit fatal;
    private volatile boolean noOffset;
    private volatile boolean stopping;
    private volatile long records;
    private volatile long lastOffset = -1;
    private volatile long committedOffset = -1;
    private volatile boolean holdsP0;
    private volatile boolean needEnd;
    private Long endOffset;

    // With the class's own SCHEMA$ (namespace com.alibaba.dts.formats.avro): Avro 1.8's
    // SpecificData.getSchema(Record.class) rewrites the namespace to the Java package
    // ("maven shade" hack), and then no union branch matches the datum's schema name.
    private final SpecificDatumWriter<Record> writer = new SpecificDatumWriter<>(Record.getClassSchema());
    private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
    private BinaryEncoder encoder;

    private DtsDriver(Args a) {
        this.a = a;
    }

    public static void main(String[] argv) {
        Args a;
        try {
            a = Common.parse("dts", argv);
        } catch (UsageException e) {
            System.err.println("usage: run.sh dts " + USAGE + "\n" + e.getMessage());
            Runtime.getRuntime().halt(EXIT_USAGE);
            return;
        }
        debugLogging(a.debug);
        DtsDriver d = new DtsDriver(a);
        // SIGTERM: stop the SDK (its KafkaConsumer closes and leaves the group), no "end" event
        Runtime.getRuntime().addShutdownHook(new Thread(d::terminate, "sigterm"));
        DriverExit exit;
        try {
            d.run();
            exit = new DriverExit(EXIT_OK, null, "");
        } catch (DriverExit e) {
            exit = e;
        } catch (Throwable t) {
            log("failed: " + describe(t));
            exit = fail(classify(t), describe(t));
        }
        finish(exit);
    }

    /** DefaultDTSConsumer with a look at its two record queues (protected fields). */
    static final class TapConsumer extends DefaultDTSConsumer {
        TapConsumer(ConsumerContext c) {
            super(c);
        }

        int pending() {
            return toProcessRecords.size() + defaultUserRecords.size();
        }
    }

    /**
     * Passed to the SDK's consumer as kafka.metric.reporters: keeps the consumer's records-lag
     * metric of partition 0 (high watermark minus position, after each fetch).
     */
    public static final class LagReporter implements MetricsReporter {
        static volatile String topic;
        static volatile KafkaMetric lag;

        @Override
        public void configure(Map<String, ?> configs) {}

        @Override
        public void init(List<KafkaMetric> metrics) {
            for (KafkaMetric m : metrics) {
                metricChange(m);
            }
        }

        @Override
        public void metricChange(KafkaMetric m) {
            if (m.metricName().name().equals("records-lag")
                    && m.metricName().group().equals("consumer-fetch-manager-metrics")
                    && "0".equals(m.metricName().tags().get("partition"))
                    && String.valueOf(topic).equals(m.metricName().tags().get("topic"))) {
                lag = m;
            }
        }

        @Override
        public void metricRemoval(KafkaMetric m) {
            if (lag == m) {
                lag = null;
            }
        }

        @Override
        public void close() {}

        static double value() {
            KafkaMetric m = lag;
            if (m == null) {
                return Double.NaN;
            }
            Object v = m.metricValue();
            return v instanceof Number ? ((Number) v).doubleValue() : Double.NaN;
        }
    }

    private long timeLeftMs() {
        return a.limitMs() - (System.currentTimeMillis() - t0);
    }

    private void run() throws Exception {
        if (a.noSasl) {
            throw fail("other", "--no-sasl: the DTS SDK always connects with SASL_PLAINTEXT/PLAIN");
        }
        if (a.groupIdOverride != null) {
            throw fail("other", "--group-id: the DTS SDK derives the user name and group.id from one sid");
        }
        String checkpoint;
        boolean force;
        switch (a.startKind) {
            case "time-s":
            case "time-ms":
                checkpoint = Long.toString(a.startValue);
                force = true;
                break;
            case "earliest":
                checkpoint = "0";
                force = true;
                break;
            case "committed":
                checkpoint = "0";
                force = false;
                break;
            default:
                throw fail("other", "--start " + a.startKind + " cannot be expressed with the DTS SDK"
                        + " (it always seeks with offsetsForTimes)");
        }
        LagReporter.topic = a.topic;
        ConsumerContext.ConsumerSubscribeMode mode = a.mode.equals("subscribe")
                ? ConsumerContext.ConsumerSubscribeMode.SUBSCRIBE
                : ConsumerContext.ConsumerSubscribeMode.ASSIGN;
        // sid = the group: the SDK logs in as "<user>-<sid>" and uses group.id = sid
        ctx = new ConsumerContext(a.bootstrap, a.topic, a.group, a.user, a.password, checkpoint, mode);
        ctx.setForceUseCheckpoint(force);
        ctx.setUseLocalCheckpointStore(false);
        // extra Kafka consumer settings pass through as "kafka."-prefixed properties
        ctx.setProperty("kafka.metric.reporters", LagReporter.class.getName());
        if (a.clientId != null) {
            ctx.setProperty("kafka." + ConsumerConfig.CLIENT_ID_CONFIG, a.clientId);
        }
        if (a.sessionTimeoutMs >= 0) {
            ctx.setProperty("kafka." + ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(a.sessionTimeoutMs));
            ctx.setProperty("kafka." + ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG,
                    Integer.toString(Math.max(100, Math.min(3000, a.sessionTimeoutMs / 3))));
        }
        log("DTS SDK dts-new-subscribe-sdk " + sdkVersion() + ", mode " + mode + ", initCheckpoint " + checkpoint
                + ", forceUseCheckpoint " + force);

        consumer = new TapConsumer(ctx);
        Map<String, RecordListener> listeners = new HashMap<>();
        listeners.put("changetrack-driver", this::onRecord);
        consumer.addRecordListeners(listeners);
        DtsLogTap.handler = this;

        if (mode == ConsumerContext.ConsumerSubscribeMode.ASSIGN) {
            holdsP0 = true;
            needEnd = a.untilEnd;
        }

        startThread = new Thread(() -> {
            try {
                consumer.start(); // blocks until the context exits
            } catch (Throwable t) {
                startError = t;
            } finally {
                startReturned = true;
            }
        }, "dts-consumer-start");
        startThread.setDaemon(true);
        startThread.start();

        long lagZeroSince = -1;
        while (true) {
            checkFatal();
            if (noOffset) {
                throw new DriverExit(EXIT_NO_OFFSET, null, "no offset");
            }
            if (startError != null) {
                throw fail(classify(startError), "DTS consumer: " + describe(startError));
            }
            if (ctx.isExited() || startReturned) {
                throw fail("other", "the DTS SDK stopped by itself (see its log on stderr)");
            }
            if (a.maxRecords >= 0 && records >= a.maxRecords) {
                break;
            }
            if (timeLeftMs() <= 0) {
                if (a.runSeconds >= 0) {
                    break;
                }
                throw fail("other", "no stop condition reached within " + DEFAULT_GIVE_UP_MS / 1000 + " s (give-up limit)");
            }
            if (needEnd && holdsP0) {
                needEnd = false;
                endOffset = readEnd();
                log("end offset of " + a.topic + "-0: " + endOffset);
            }
            if (a.untilEnd && holdsP0 && endOffset != null) {
                if (lastOffset + 1 >= endOffset) {
                    break;
                }
                // no record left to hand over, e.g. only placeholders (<= 2 bytes) at the end
                if (LagReporter.value() == 0.0 && consumer.pending() == 0) {
                    long now = System.currentTimeMillis();
                    if (lagZeroSince < 0) {
                        lagZeroSince = now;
                    } else if (now - lagZeroSince >= 1500) {
                        log("records-lag 0 and no record pending: position reached the end offset");
                        break;
                    }
                } else {
                    lagZeroSince = -1;
                }
            }
            Thread.sleep(50);
        }
        stopping = true;
        if (a.commit && lastOffset >= 0) {
            long deadline = System.currentTimeMillis() + 15_000;
            while (committedOffset < lastOffset && System.currentTimeMillis() < deadline) {
                checkFatal();
                Thread.sleep(50);
            }
            if (committedOffset < lastOffset) {
                log("the SDK did not confirm the commit of offset " + lastOffset + " within 15 s");
            }
        }
        DtsLogTap.handler = null;
        consumer.close(); // ConsumerContext.exit(): the SDK's threads stop, its KafkaConsumer closes
        startThread.join(25_000);
        emit(new Json("end").num("records", records));
    }

    private void terminate() {
        terminating = true;
        stopping = true;
        DtsLogTap.handler = null;
        TapConsumer c = consumer;
        Thread t = startThread;
        if (c == null || t == null) {
            return;
        }
        c.close();
        try {
            t.join(15_000);
        } catch (InterruptedException e) {
            // exit
        }
    }

    private void checkFatal() {
        DriverExit f = fatal;
        if (f != null) {
            throw f;
        }
    }

    private Long readEnd() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "changetrack-dts-driver-end-offset");
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
        p.put(SaslConfigs.SASL_MECHANISM, "PLAIN");
        p.put(SaslConfigs.SASL_JAAS_CONFIG, "org.apache.kafka.common.security.plain.PlainLoginModule required"
                + " username=\"" + KafkaClientDriver.jaasEscape(a.username()) + "\" password=\""
                + KafkaClientDriver.jaasEscape(a.password) + "\";");
        TopicPartition tp0 = new TopicPartition(a.topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            return c.endOffsets(Collections.singleton(tp0), Duration.ofMillis(REQUEST_TIMEOUT_MS)).get(tp0);
        }
    }

    // --- the SDK's record listener (its EtlRecordProcessor thread) ---------------------------

    private void onRecord(DefaultUserRecord r) {
        if (stopping || noOffset || fatal != null) {
            return;
        }
        if (a.maxRecords >= 0 && records >= a.maxRecords) {
            return;
        }
        Record av = r.getAvroRecord();
        String value;
        try {
            buf.reset();
            encoder = EncoderFactory.get().binaryEncoder(buf, encoder);
            writer.write(av, encoder);
            encoder.flush();
            value = b64(buf.toByteArray());
        } catch (IOException | RuntimeException e) {
            log("re-encoding record at offset " + r.getOffset() + ": " + e);
            value = null;
        }
        emit(new Json("record").num("offset", r.getOffset()).num("id", av.getId())
                .num("source_timestamp", av.getSourceTimestamp())
                .str("operation", av.getOperation() == null ? null : av.getOperation().name())
                .str("object_name", av.getObjectName()).str("source_position", av.getSourcePosition())
                .str("value", value));
        synchronized (lock) {
            records++;
            lastOffset = r.getOffset();
        }
        if (a.commit) {
            r.commit(String.valueOf(r.getSourceTimestamp()));
        }
    }

    // --- what the SDK logs ---------------------------------------------------------------------

    private static final Pattern SEEK = Pattern.compile("Seeking to offset (\\d+) for partition (.+)-(\\d+)$");
    private static final Pattern ASSIGNED = Pattern.compile("partition assigned for \\[(.*)\\]");
    private static final Pattern FROM_DSTORE = Pattern.compile("try load checkpoint from DStore: (.*)$", Pattern.DOTALL);
    private static final Pattern CHECKPOINT =
            Pattern.compile("timestamp: (-?\\d+), offset: (-?\\d+), info: (.*)\\]$", Pattern.DOTALL);
    private static final Pattern COMMIT_OK = Pattern.compile("Commit offset success .*?(Checkpoint\\[.*\\])$", Pattern.DOTALL);

    @Override
    public void onLog(String logger, Level level, String msg, Throwable thrown) {
        if (msg == null) {
            return;
        }
        String cls = logger.substring(logger.lastIndexOf('.') + 1);
        Matcher m;
        switch (cls) {
            case "KafkaConsumer":
                m = SEEK.matcher(msg);
                if (m.find() && m.group(2).endsWith(a.topic) && m.group(3).equals("0")) {
                    emit(new Json("seek").num("offset", Long.parseLong(m.group(1))));
                }
                return;
            case "ConsumerWrap":
                if (msg.startsWith("Failed seek timestamp")) {
                    // offsetsForTimes found nothing: the SDK would seek to the beginning
                    emit(new Json("seek").num("offset", null));
                    if (a.startKind.startsWith("time-")) {
                        noOffset = true;
                    }
                    return;
                }
                m = ASSIGNED.matcher(msg);
                if (m.find()) {
                    List<Integer> ids = new ArrayList<>();
                    for (String s : m.group(1).split(",")) {
                        s = s.trim();
                        int dash = s.lastIndexOf('-');
                        if (dash > 0 && s.substring(0, dash).equals(a.topic)) {
                            ids.add(Integer.parseInt(s.substring(dash + 1)));
                        }
                    }
                    Collections.sort(ids);
                    StringBuilder sb = new StringBuilder("[");
                    for (int i = 0; i < ids.size(); i++) {
                        sb.append(i > 0 ? "," : "").append(ids.get(i));
                    }
                    emit(new Json("assigned").raw("partitions", sb.append(']').toString()));
                    boolean p0 = ids.contains(0);
                    if (p0 && a.untilEnd) {
                        needEnd = true;
                    }
                    holdsP0 = p0;
                    return;
                }
                if (msg.contains("partition revoked")) {
                    holdsP0 = false;
                }
                return;
            case "KafkaRecordFetcher":
                m = FROM_DSTORE.matcher(msg);
                if (m.find() && a.startKind.equals("committed")) {
                    // assign mode reads it in getCheckpoint() ("...and local checkpoint is null..."),
                    // subscribe mode in onPartitionsAssigned ("...shared store checkpoint is null...")
                    boolean assignMsg = msg.contains("and local checkpoint");
                    if (assignMsg == a.mode.equals("assign")) {
                        Matcher c = CHECKPOINT.matcher(m.group(1));
                        if (c.find()) {
                            emit(new Json("fetched_commit").num("offset", Long.parseLong(c.group(2)))
                                    .str("metadata", c.group(3)));
                        } else {
                            emit(new Json("fetched_commit").num("offset", null).str("metadata", null));
                        }
                    }
                    return;
                }
                if (level.isGreaterOrEqual(Level.WARN) && thrown != null) {
                    String kind = classify(thrown);
                    if (!kind.equals("other")) {
                        fatal = fail(kind, describe(thrown));
                    } else if (level.isGreaterOrEqual(Level.ERROR)) {
                        fatal = fail("other", msg + ": " + describe(thrown));
                    } else {
                        log("the SDK will retry after: " + describe(thrown));
                    }
                }
                return;
            case "KafkaMetaStore":
                m = COMMIT_OK.matcher(msg);
                if (m.find()) {
                    Matcher c = CHECKPOINT.matcher(m.group(1));
                    if (c.find()) {
                        long off = Long.parseLong(c.group(2));
                        committedOffset = Math.max(committedOffset, off);
                        emit(new Json("committed").num("offset", off).str("metadata", c.group(1)));
                    }
                    return;
                }
                if (thrown != null && !classify(thrown).equals("other")) {
                    fatal = fail(classify(thrown), describe(thrown));
                }
                return;
            default:
                if (logger.startsWith("com.aliyun") && level.isGreaterOrEqual(Level.ERROR)) {
                    fatal = fail(thrown == null ? "other" : classify(thrown),
                            msg + (thrown == null ? "" : ": " + describe(thrown)));
                }
        }
    }

    private static String sdkVersion() {
        Package p = DefaultDTSConsumer.class.getPackage();
        String v = p == null ? null : p.getImplementationVersion();
        if (v != null) {
            return v;
        }
        String where = String.valueOf(DefaultDTSConsumer.class.getProtectionDomain().getCodeSource().getLocation());
        Matcher m = Pattern.compile("dts-new-subscribe-sdk-([^/]+)\\.jar").matcher(where);
        return m.find() ? m.group(1) : where;
    }
}
