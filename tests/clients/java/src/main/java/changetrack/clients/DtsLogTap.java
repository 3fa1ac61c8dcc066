package changetrack.clients;

import org.apache.log4j.AppenderSkeleton;
import org.apache.log4j.Level;
import org.apache.log4j.spi.LoggingEvent;
import org.apache.log4j.spi.ThrowableInformation;

/**
 * A log4j appender that hands the DTS SDK's (and the Kafka consumer's) log events to the DTS
 * driver. The SDK has no callbacks for seeks, assignments, fetched or committed checkpoints or
 * errors (it logs them and retries), so the driver reads them from the log: see
 * src/main/resources/log4j.properties for the loggers routed here and DtsDriver.onLog for the
 * messages it understands. Without a handler (the kafka-clients driver) events are dropped.
 */
public final class DtsLogTap extends AppenderSkeleton {
    interface Handler {
        void onLog(String logger, Level level, String message, Throwable thrown);
    }

    static volatile Handler handler;

    @Override
    protected void append(LoggingEvent event) {
        Handler h = handler;
        if (h == null) {
            return;
        }
        ThrowableInformation ti = event.getThrowableInformation();
        try {
            h.onLog(event.getLoggerName(), event.getLevel(), event.getRenderedMessage(),
                    ti == null ? null : ti.getThrowable());
        } catch (RuntimeException e) {
            System.err.println("driver: log tap: " + e);
        }
    }

    @Override
    public boolean requiresLayout() {
        return false;
    }

    @Override
    public void close() {}
}
