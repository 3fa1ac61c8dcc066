package changetrack.clients;

import static changetrack.clients.Common.*;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import com.aliyun.dts.subscribe.clients.formats.avro.Field;
import com.aliyun.dts.subscribe.clients.formats.avro.Operation;
import com.aliyun.dts.subscribe.clients.formats.avro.Record;
import com.aliyun.dts.subscribe.clients.formats.avro.Source;
import com.aliyun.dts.subscribe.clients.formats.avro.SourceType;

/**
 * Writes DTS Avro records (the SDK's own generated classes) into partition 0 of a topic of a real
 * Kafka broker, to check the DTS driver against it. Not part of the driver contract.
 *
 * <pre>
 * run.sh dts-produce --bootstrap H:P --topic T (--user U --group G | --no-sasl)
 *        [--count N] [--first-id ID] [--source-timestamp SECS] [--step-seconds S]
 *        [--timestamp-unit ms|s] [--born-timestamp] [--placeholders K]
 * </pre>
 *
 * Record i (0-based) has id = first-id + i, sourceTimestamp = source-timestamp + i * step-seconds,
 * operation INSERT, objectName "ctdb.t1", sourcePosition "binlog.000001:(4 + i)", one INT column.
 * Its Kafka timestamp (CreateTime) is sourceTimestamp * 1000 (ms) or sourceTimestamp itself
 * (--timestamp-unit s: then a real broker answers offsetsForTimes(seconds) the way the DTS store
 * does). --born-timestamp appends the 15th field of the current DTS schema (bornTimestamp, a long),
 * which the SDK 2.0.0 schema lacks. --placeholders K adds K one-byte values at the end (the SDK skips
 * values of 2 bytes or less). One JSON line per message: {"event":"produced","offset":..,"id":..,
 * "source_timestamp":..,"value":"<base64>"}.
 */
public final class DtsTestProducer {
    public static void main(String[] argv) throws Exception {
        String bootstrap = null, topic = null, user = null, group = null;
        boolean noSasl = false, born = false;
        long count = 3, firstId = 1, sourceTs = System.currentTimeMillis() / 1000, step = 1, placeholders = 0;
        String unit = "ms";
        for (int i = 0; i < argv.length; i++) {
            String o = argv[i];
            if (o.equals("--no-sasl")) { noSasl = true; continue; }
            if (o.equals("--born-timestamp")) { born = true; continue; }
            if (i + 1 >= argv.length) { usage("missing value for " + o); }
            String v = argv[++i];
            switch (o) {
                case "--bootstrap": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--user": user = v; break;
                case "--group": group = v; break;
                case "--count": count = Long.parseLong(v); break;
                case "--first-id": firstId = Long.parseLong(v); break;
                case "--source-timestamp": sourceTs = Long.parseLong(v); break;
                case "--step-seconds": step = Long.parseLong(v); break;
                case "--timestamp-unit": unit = v; break;
                case "--placeholders": placeholders = Long.parseLong(v); break;
                default: usage("unknown option " + o);
            }
        }
        if (bootstrap == null || topic == null || (!noSasl && (user == null || group == null))) {
            usage("--bootstrap, --topic and --user/--group (or --no-sasl) are required");
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        if (!noSasl) {
            p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
            p.put(SaslConfigs.SASL_MECHANISM, "PLAIN");
            p.put(SaslConfigs.SASL_JAAS_CONFIG, "org.apache.kafka.common.security.plain.PlainLoginModule required"
                    + " username=\"" + KafkaClientDriver.jaasEscape(user + "-" + group) + "\" password=\""
                    + KafkaClientDriver.jaasEscape(System.getenv().getOrDefault("CT_KAFKA_PASSWORD", "")) + "\";");
        }
        SpecificDatumWriter<Record> writer = new SpecificDatumWriter<>(Record.getClassSchema());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (long i = 0; i < count + placeholders; i++) {
                byte[] value;
                long ts = sourceTs + Math.min(i, count - 1) * step;
                long id = firstId + i;
                if (i < count) {
                    value = encode(writer, record(id, ts, i), born ? ts * 1000 + 1 : null);
                } else {
                    value = new byte[] {0};
                }
                long kafkaTs = unit.equals("s") ? ts : ts * 1000;
                RecordMetadata md = producer.send(new ProducerRecord<>(topic, 0, kafkaTs, null, value)).get();
                emit(new Json("produced").num("offset", md.offset()).num("id", i < count ? id : null)
                        .num("source_timestamp", i < count ? ts : null).str("value", b64(value)));
            }
        }
    }

    private static void usage(String msg) {
        System.err.println("usage: run.sh dts-produce --bootstrap H:P --topic T (--user U --group G | --no-sasl)"
                + " [--count N] [--first-id ID] [--source-timestamp SECS] [--step-seconds S]"
                + " [--timestamp-unit ms|s] [--born-timestamp] [--placeholders K]\n" + msg);
        Runtime.getRuntime().halt(EXIT_USAGE);
    }

    static Record record(long id, long sourceTs, long i) {
        List<Field> fields = new ArrayList<>();
        fields.add(new Field("id", 3)); // MySQL type number 3: INT
        List<Object> after = new ArrayList<>();
        after.add(new com.aliyun.dts.subscribe.clients.formats.avro.Integer(32, Long.toString(100 + i)));
        Map<String, String> tags = new HashMap<>();
        tags.put("pk_uk_info", "{\"PRIMARY\":[\"id\"]}");
        return new Record(1, id, sourceTs, "binlog.000001:" + (4 + i), "", "", new Source(SourceType.MySQL, "8.0.36"),
                Operation.INSERT, "ctdb.t1", Collections.singletonList(sourceTs * 1000), tags, fields, null, after);
    }

    static byte[] encode(SpecificDatumWriter<Record> writer, Record r, Long bornTimestamp) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        writer.write(r, enc);
        if (bornTimestamp != null) {
            enc.writeLong(bornTimestamp);
        }
        enc.flush();
        return out.toByteArray();
    }
}
