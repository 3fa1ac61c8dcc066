package peers;

import com.github.shyiko.mysql.binlog.BinaryLogFileReader;
import com.github.shyiko.mysql.binlog.event.DeleteRowsEventData;
import com.github.shyiko.mysql.binlog.event.Event;
import com.github.shyiko.mysql.binlog.event.EventData;
import com.github.shyiko.mysql.binlog.event.TransactionPayloadEventData;
import com.github.shyiko.mysql.binlog.event.UpdateRowsEventData;
import com.github.shyiko.mysql.binlog.event.WriteRowsEventData;
import com.github.shyiko.mysql.binlog.event.deserialization.EventDeserializer;

import java.io.File;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * mysql-binlog-connector-java's file reader with no output: BinaryLogFileReader over each file,
 * the default EventDeserializer (every row deserialized into Serializable[]), and only the counts
 * printed at the end, as the repository's examples/binlog_count does:
 * "records N rows N values N" (records are events here).
 *
 * Usage: java -cp ... peers.BinlogCount [--mode=COMPATIBILITY_MODE,...] FILE [FILE...]
 * With no --mode, the library's defaults: see benches/peers/RESULTS.md for what they decode.
 * --mode=debezium sets the modes Debezium's MySQL connector uses (DATE_AND_TIME_AS_LONG_MICRO,
 * CHAR_AND_BINARY_AS_BYTE_ARRAY, INVALID_DATE_AND_TIME_AS_MIN_VALUE).
 */
public final class BinlogCount {
    public static void main(String[] args) throws Exception {
        List<EventDeserializer.CompatibilityMode> modes = new ArrayList<>();
        List<String> files = new ArrayList<>();
        for (String a : args) {
            if (a.startsWith("--mode=")) {
                for (String m : a.substring(7).split(",")) {
                    if (m.equals("debezium")) {
                        modes.add(EventDeserializer.CompatibilityMode.DATE_AND_TIME_AS_LONG_MICRO);
                        modes.add(EventDeserializer.CompatibilityMode.CHAR_AND_BINARY_AS_BYTE_ARRAY);
                        modes.add(EventDeserializer.CompatibilityMode.INVALID_DATE_AND_TIME_AS_MIN_VALUE);
                    } else if (!m.isEmpty()) {
                        modes.add(EventDeserializer.CompatibilityMode.valueOf(m));
                    }
                }
            } else {
                files.add(a);
            }
        }
        if (files.isEmpty()) {
            System.err.println("usage: BinlogCount [--mode=MODE,...] FILE [FILE...]");
            System.exit(2);
        }
        long events = 0, rows = 0, values = 0;
        for (String name : files) {
            EventDeserializer deserializer = new EventDeserializer();
            if (!modes.isEmpty()) {
                deserializer.setCompatibilityMode(modes.get(0),
                        modes.subList(1, modes.size()).toArray(new EventDeserializer.CompatibilityMode[0]));
            }
            try (BinaryLogFileReader reader = new BinaryLogFileReader(new File(name), deserializer)) {
                for (Event ev; (ev = reader.readEvent()) != null; ) {
                    long[] c = count(ev);
                    events += c[0];
                    rows += c[1];
                    values += c[2];
                }
            } catch (Exception e) {
                System.err.println("error: " + name + " after " + events + " events: " + e);
                System.exit(1);
            }
        }
        System.out.println("records " + events + " rows " + rows + " values " + values);
    }

    /** {events, rows, values} of one event, TRANSACTION_PAYLOAD's inner events included. */
    private static long[] count(Event ev) {
        long events = 1, rows = 0, values = 0;
        EventData d = ev.getData();
        if (d instanceof TransactionPayloadEventData) {
            for (Event inner : ((TransactionPayloadEventData) d).getUncompressedEvents()) {
                long[] c = count(inner);
                events += c[0];
                rows += c[1];
                values += c[2];
            }
        } else if (d instanceof WriteRowsEventData) {
            for (Serializable[] r : ((WriteRowsEventData) d).getRows()) {
                rows++;
                values += r.length;
            }
        } else if (d instanceof UpdateRowsEventData) {
            for (Map.Entry<Serializable[], Serializable[]> r : ((UpdateRowsEventData) d).getRows()) {
                rows++;
                values += r.getKey().length + r.getValue().length;
            }
        } else if (d instanceof DeleteRowsEventData) {
            for (Serializable[] r : ((DeleteRowsEventData) d).getRows()) {
                rows++;
                values += r.length;
            }
        }
        return new long[] {events, rows, values};
    }
}
