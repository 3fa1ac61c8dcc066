package changetrack.clients;

import static changetrack.clients.Common.*;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * The contract of ../README.md with the plain Java client, kafka-clients 2.7.0 KafkaConsumer.
 *
 * <pre>run.sh kafka-clients consume --bootstrap H:P --topic T --user U --group G [options]</pre>
 */
public final class KafkaClientDriver {
    private final Args a;
    private final TopicPartition tp0;
    private final long t0 = System.currentTimeMillis();
    private volatile KafkaConsumer<byte[], byte[]> consumer;
    private volatile boolean terminated;

    private long records;
    private long lastOffset = -1;
    private long lastTimestamp;
    private boolean haveLast;
    private Long endOffset; // --until-end: read when partition 0 was obtained
    private boolean holdsP0;

    private KafkaClientDriver(Args a) {
        this.a = a;
        this.tp0 = new TopicPartition(a.topic, 0);
    }

    public static void main(String[] argv) {
        Args a;
        try {
            a = Common.parse("kafka-clients", argv);
        } catch (UsageException e) {
            System.err.println("usage: run.sh kafka-clients " + USAGE + "\n" + e.getMessage());
            Runtime.getRuntime().halt(EXIT_USAGE);
            return;
        }
        debugLogging(a.debug);
        log("kafka-clients " + AppInfoParser.getVersion() + " (" + AppInfoParser.getCommitId() + ")");
        KafkaClientDriver d = new KafkaClientDriver(a);
        // SIGTERM: leave the group cleanly (wake the consumer up, the main thread closes it), no
        // "end" event, exit 143
        java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            d.terminated = true;
            terminating = true;
            KafkaConsumer<byte[], byte[]> c = d.consumer;
            if (c != null) {
                c.wakeup();
            }
            try {
                closed.await(15, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                // exit
            }
        }, "sigterm"));
        DriverExit exit;
        try {
            d.run();
            exit = new DriverExit(EXIT_OK, null, "");
        } catch (DriverExit e) {
            exit = e;
        } catch (Throwable t) {
            if (d.terminated) {
                d.close(true);
                closed.countDown();
                finish(new DriverExit(143, null, "terminated"));
            }
            String kind = classify(t);
            log("failed: " + describe(t));
            exit = fail(kind, describe(t));
        }
        d.close(exit.code == EXIT_OK);
        finish(exit);
    }

    private Duration timeout() {
        long left = a.limitMs() - (System.currentTimeMillis() - t0);
        return Duration.ofMillis(Math.max(1000, Math.min(REQUEST_TIMEOUT_MS, left)));
    }

    private long timeLeftMs() {
        return a.limitMs() - (System.currentTimeMillis() - t0);
    }

    /** True when --run-seconds has passed; throws when the default give-up time has. */
    private boolean timeUp() {
        if (timeLeftMs() > 0) {
            return false;
        }
        if (a.runSeconds >= 0) {
            return true;
        }
        throw fail("other", "no stop condition reached within " + DEFAULT_GIVE_UP_MS / 1000 + " s (give-up limit)");
    }

    private Properties config() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, a.groupId());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // assign mode positions explicitly; an out-of-range position is an error, not a reset
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, a.mode.equals("subscribe") ? "earliest" : "none");
        p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        if (!a.noSasl) {
            p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
            p.put(SaslConfigs.SASL_MECHANISM, "PLAIN");
            p.put(SaslConfigs.SASL_JAAS_CONFIG, "org.apache.kafka.common.security.plain.PlainLoginModule required"
                    + " username=\"" + jaasEscape(a.username()) + "\" password=\"" + jaasEscape(a.password) + "\";");
        }
        if (a.clientId != null) {
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, a.clientId);
        }
        if (a.sessionTimeoutMs >= 0) {
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(a.sessionTimeoutMs));
            // heartbeat.interval.ms (default 3000) must stay below the session timeout
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG,
                    Integer.toString(Math.max(100, Math.min(3000, a.sessionTimeoutMs / 3))));
        }
        return p;
    }

    static String jaasEscape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    private void run() {
        consumer = new KafkaConsumer<>(config());
        if (a.mode.equals("assign")) {
            startAssigned();
        } else {
            consumer.subscribe(Collections.singletonList(a.topic), new Listener());
        }

        while (true) {
            if (a.maxRecords >= 0 && records >= a.maxRecords) {
                break;
            }
            if (timeUp()) {
                break;
            }
            if (endReached()) {
                break;
            }
            long wait = Math.max(50, Math.min(500, timeLeftMs()));
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(wait));
            boolean got = false;
            for (ConsumerRecord<byte[], byte[]> r : batch) {
                if (a.maxRecords >= 0 && records >= a.maxRecords) {
                    break;
                }
                if (r.partition() != 0 || !r.topic().equals(a.topic)) {
                    continue;
                }
                emit(new Json("record").num("offset", r.offset()).num("timestamp_ms", r.timestamp())
                        .str("key", b64(r.key())).str("value", b64(r.value())));
                records++;
                lastOffset = r.offset();
                lastTimestamp = r.timestamp();
                haveLast = true;
                got = true;
            }
            if (got && a.commit) {
                commit();
            }
        }
        if (a.commit && haveLast) {
            commit();
        }
        emit(new Json("end").num("records", records));
    }

    private void startAssigned() {
        consumer.assign(Collections.singletonList(tp0));
        holdsP0 = true;
        switch (a.startKind) {
            case "earliest":
                consumer.seekToBeginning(Collections.singletonList(tp0));
                break;
            case "latest":
                consumer.seekToEnd(Collections.singletonList(tp0));
                break;
            case "offset":
                consumer.seek(tp0, a.startValue);
                break;
            case "committed": {
                OffsetAndMetadata c = fetchCommitted();
                emit(new Json("fetched_commit").num("offset", c == null ? null : c.offset())
                        .str("metadata", c == null ? null : c.metadata()));
                if (c == null) {
                    consumer.seekToBeginning(Collections.singletonList(tp0));
                } else {
                    consumer.seek(tp0, c.offset());
                }
                break;
            }
            case "time-s":
            case "time-ms": {
                // the number as given: the DTS SDK passes seconds, librdkafka users milliseconds
                Map<TopicPartition, OffsetAndTimestamp> res =
                        consumer.offsetsForTimes(Collections.singletonMap(tp0, a.startValue), timeout());
                OffsetAndTimestamp ot = res.get(tp0);
                if (ot == null) {
                    emit(new Json("seek").num("offset", null));
                    throw new DriverExit(EXIT_NO_OFFSET, null, "no offset");
                }
                emit(new Json("seek").num("offset", ot.offset()));
                consumer.seek(tp0, ot.offset());
                break;
            }
            default:
                throw new IllegalStateException(a.startKind);
        }
        if (a.untilEnd) {
            readEnd();
        }
    }

    private OffsetAndMetadata fetchCommitted() {
        Map<TopicPartition, OffsetAndMetadata> m = consumer.committed(Collections.singleton(tp0), timeout());
        return m.get(tp0);
    }

    private void readEnd() {
        Map<TopicPartition, Long> end = consumer.endOffsets(Collections.singleton(tp0), timeout());
        endOffset = end.get(tp0);
        log("end offset of " + tp0 + ": " + endOffset);
    }

    private boolean endReached() {
        if (!a.untilEnd || !holdsP0 || endOffset == null || !consumer.assignment().contains(tp0)) {
            return false;
        }
        return consumer.position(tp0, timeout()) >= endOffset;
    }

    private void commit() {
        long offset = lastOffset + 1;
        String metadata = Long.toString(Math.floorDiv(lastTimestamp, 1000L));
        try {
            consumer.commitSync(Collections.singletonMap(tp0, new OffsetAndMetadata(offset, metadata)), timeout());
        } catch (CommitFailedException | RebalanceInProgressException e) {
            if (a.mode.equals("subscribe")) {
                log("commit of " + offset + " skipped during a rebalance: " + e);
                return;
            }
            throw e;
        }
        emit(new Json("committed").num("offset", offset).str("metadata", metadata));
    }

    private final class Listener implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            log("revoked " + partitions);
            holdsP0 = false;
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            Set<TopicPartition> now = consumer.assignment();
            List<Integer> ids = new ArrayList<>();
            for (TopicPartition tp : now) {
                if (tp.topic().equals(a.topic)) {
                    ids.add(tp.partition());
                }
            }
            Collections.sort(ids);
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < ids.size(); i++) {
                sb.append(i > 0 ? "," : "").append(ids.get(i));
            }
            emit(new Json("assigned").raw("partitions", sb.append(']').toString()));
            holdsP0 = now.contains(tp0);
            if (holdsP0 && a.untilEnd) {
                readEnd();
            }
        }
    }

    private void close(boolean clean) {
        if (consumer == null) {
            return;
        }
        try {
            consumer.close(Duration.ofSeconds(clean ? 10 : 2));
        } catch (Throwable t) {
            log("close: " + describe(t));
        }
    }
}
