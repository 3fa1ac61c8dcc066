#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, combined broker+controller) from Maven Central jars, for
# side-by-side benchmarks and for checking the client drivers in tests/clients/.
#
#   kafka.sh setup
#       Resolves the broker's jars once (tests/support/kafka-broker/pom.xml, Maven) into
#       ${CHANGETRACK_KAFKA_CACHE:-$HOME/.cache/changetrack-kafka}/<version>/libs and prints that
#       directory. A second run is instant and needs no network.
#   kafka.sh start --dir DIR --port PORT --controller-port CPORT [--node-id N]
#                  [--quorum "1@127.0.0.1:C1,2@127.0.0.1:C2,3@127.0.0.1:C3"]
#                  [--sasl-user USER:PASSWORD]... [--cluster-id ID] [--prop key=value]...
#                  [--authorizer] [--heap SIZE] [--timeout SECONDS] [--no-wait]
#       Writes DIR/server.properties, formats DIR/data (once), starts kafka.Kafka in the
#       background (DIR/kafka.pid, logs in DIR/logs) and waits until the broker answers metadata
#       on 127.0.0.1:PORT (exit 0), or prints the tail of its log and exits 1. Without
#       --sasl-user the client listener is PLAINTEXT, with one or more it is SASL_PLAINTEXT/PLAIN
#       with those users (plus the internal inter-broker user ct-admin:ct-admin-secret).
#       Retention is off (log.retention.ms=-1); later --prop lines override the defaults.
#       --authorizer turns on KRaft's StandardAuthorizer (ACLs; no ACL = denied) with ct-admin and
#       the PLAINTEXT controller listener's ANONYMOUS as super users.
#       Several brokers with the same --quorum (and --cluster-id, which has a fixed default)
#       form one cluster: start each with --no-wait, then `kafka.sh wait --dir DIR` each.
#   kafka.sh wait --dir DIR [--timeout SECONDS]
#       Waits until the broker started in DIR answers (see start).
#   kafka.sh stop --dir DIR [--dir DIR2]...
#       TERM (KILL after 20 s) the brokers whose pids are in DIR/kafka.pid; returns once they are
#       gone. Stop the nodes of one cluster in one call: they then stop together in seconds.
#   kafka.sh create-topic --bootstrap H:P --topic T [--partitions N] [--replication R]
#                  [--sasl-user U:P] [--config k=v]...
#   kafka.sh acl --bootstrap H:P [--sasl-user U:P] ARG...
#       Runs the ACL tool (kafka.admin.AclCommand) as U (default the internal super user
#       ct-admin), e.g. acl --bootstrap 127.0.0.1:9092 --add --allow-principal User:alice-g1
#       --operation Read --operation Describe --topic cdc. Needs a broker started with --authorizer.
#   kafka.sh run CLASS [ARG]...
#       Runs any class of the cached jars (e.g. kafka.admin.AclCommand, kafka.tools.StorageTool).
#
# Everything listens on 127.0.0.1 only. Environment: CHANGETRACK_KAFKA_VERSION (default 3.9.1:
# Kafka 4.x brokers dropped the old request versions that kafka-python 2.0.2 and sarama V0_11
# send), CHANGETRACK_KAFKA_CACHE, JAVA (default java), KCAT (default kcat; when missing the
# readiness check runs kafka.admin.BrokerApiVersionsCommand instead).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$HERE/kafka-broker/pom.xml"
VERSION=${CHANGETRACK_KAFKA_VERSION:-3.9.1}
CACHE_ROOT=${CHANGETRACK_KAFKA_CACHE:-$HOME/.cache/changetrack-kafka}
CACHE="$CACHE_ROOT/$VERSION"
LIBS="$CACHE/libs"
JAVA=${JAVA:-java}
KCAT=${KCAT:-kcat}
ADMIN_USER=ct-admin
ADMIN_PASSWORD=ct-admin-secret
# A fixed cluster id (base64 of 16 bytes) so that brokers of one quorum agree without being told.
DEFAULT_CLUSTER_ID=Y2hhbmdldHJhY2stdGVzdA

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# --- setup -----------------------------------------------------------------------------------

setup() {
    if [ -f "$CACHE/complete" ] && [ ! "$POM" -nt "$CACHE/complete" ]; then
        echo "$LIBS"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (install maven)"
    mkdir -p "$CACHE"
    rm -rf "$LIBS.tmp"
    echo "kafka.sh: resolving org.apache.kafka:kafka_2.13:$VERSION from Maven Central" >&2
    mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$VERSION" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 ||
        die "could not resolve the Kafka $VERSION jars (mvn failed)"
    ls "$LIBS.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar was resolved"
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    # log4j 1 (reload4j) configuration for the command-line tools: warnings to stderr.
    cat >"$CACHE/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    # Which TopicCommand this version has (core's kafka.admin until 3.6, tools' since).
    if (cd "$LIBS" && for j in kafka-tools-*.jar; do [ -f "$j" ] && jar tf "$j"; done) 2>/dev/null |
        grep -q '^org/apache/kafka/tools/TopicCommand.class$'; then
        echo org.apache.kafka.tools.TopicCommand >"$CACHE/topic-command"
    else
        echo kafka.admin.TopicCommand >"$CACHE/topic-command"
    fi
    touch "$CACHE/complete"
    echo "$LIBS"
}

require_setup() {
    if [ ! -f "$CACHE/complete" ]; then
        setup >/dev/null
    fi
}

classpath() { echo "$LIBS/*"; }

# Runs a class of the cached jars in the foreground with the tools' logging.
run_class() {
    require_setup
    local cls=$1
    shift
    "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j.configuration="file:$CACHE/tools-log4j.properties" \
        -cp "$(classpath)" "$cls" "$@"
}

# --- argument checks ---------------------------------------------------------------------------

check_port() {
    [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] || die "$1: not a port: $2"
}

# USER:PASSWORD, both free of characters that would break the JAAS text.
check_user() {
    local u=${1%%:*} p=${1#*:} re='^[A-Za-z0-9_$-]+$'
    [[ $1 == *:* ]] || die "--sasl-user wants USER:PASSWORD, got: $1"
    [[ $u =~ $re ]] || die "SASL user name may only use A-Z a-z 0-9 _ - \$: $u"
    [[ $p != *'"'* && $p != *'\'* && $p != *';'* && -n $p ]] || die "SASL password must be non-empty, without \" \\ ;"
}

jaas_plain_client() {
    local u=${1%%:*} p=${1#*:}
    printf 'org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s";' "$u" "$p"
}

# --- start / wait / stop -----------------------------------------------------------------------

start() {
    local dir="" port="" cport="" node_id=1 quorum="" cluster_id="$DEFAULT_CLUSTER_ID" heap=512m
    local timeout=90 wait=1 authorizer=0
    local -a users=() props=()
    while [ $# -gt 0 ]; do
        case $1 in
        --dir) dir=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --controller-port) cport=$2; shift 2 ;;
        --node-id) node_id=$2; shift 2 ;;
        --quorum) quorum=$2; shift 2 ;;
        --sasl-user) check_user "$2"; users+=("$2"); shift 2 ;;
        --cluster-id) cluster_id=$2; shift 2 ;;
        --prop) [[ $2 == *=* ]] || die "--prop wants key=value, got: $2"; props+=("$2"); shift 2 ;;
        --heap) heap=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --no-wait) wait=0; shift ;;
        --authorizer) authorizer=1; shift ;;
        *) die "start: unknown argument: $1" ;;
        esac
    done
    [ -n "$dir" ] || die "start: --dir is required"
    check_port --port "$port"
    check_port --controller-port "$cport"
    [[ $node_id =~ ^[0-9]+$ ]] || die "--node-id: not a number: $node_id"
    [ -n "$quorum" ] || quorum="$node_id@127.0.0.1:$cport"
    [[ $quorum == *"$node_id@127.0.0.1:$cport"* ]] ||
        die "--quorum must contain this node as $node_id@127.0.0.1:$cport: $quorum"
    local voters rf min_isr
    voters=$(tr ',' '\n' <<<"$quorum" | grep -c @)
    rf=$((voters < 3 ? voters : 3))
    min_isr=$((rf < 2 ? 1 : 2))

    require_setup
    mkdir -p "$dir/logs" "$dir/data"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
        die "a broker is already running from $dir (pid $(cat "$dir/kafka.pid"))"
    fi

    local proto=PLAINTEXT
    [ "${#users[@]}" -eq 0 ] || proto=SASL_PLAINTEXT
    {
        echo "# written by tests/support/kafka.sh"
        echo "process.roles=broker,controller"
        echo "node.id=$node_id"
        echo "controller.quorum.voters=$quorum"
        echo "listeners=CLIENT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
        echo "advertised.listeners=CLIENT://127.0.0.1:$port"
        echo "listener.security.protocol.map=CLIENT:$proto,CONTROLLER:PLAINTEXT"
        echo "inter.broker.listener.name=CLIENT"
        echo "controller.listener.names=CONTROLLER"
        echo "log.dirs=$dir/data"
        echo "num.partitions=1"
        echo "default.replication.factor=1"
        echo "offsets.topic.replication.factor=$rf"
        echo "transaction.state.log.replication.factor=$rf"
        echo "transaction.state.log.min.isr=$min_isr"
        echo "num.network.threads=2"
        echo "num.io.threads=4"
        echo "num.recovery.threads.per.data.dir=1"
        # keep everything: test records often carry old timestamps (e.g. 1700000000 as seconds
        # or as milliseconds), which the default 7-day retention deletes within 5 minutes
        echo "log.retention.ms=-1"
        if [ "$proto" = SASL_PLAINTEXT ]; then
            echo "sasl.enabled.mechanisms=PLAIN"
            echo "sasl.mechanism.inter.broker.protocol=PLAIN"
            local jaas u
            jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
            jaas+=" username=\"$ADMIN_USER\" password=\"$ADMIN_PASSWORD\""
            jaas+=" user_$ADMIN_USER=\"$ADMIN_PASSWORD\""
            for u in "${users[@]}"; do
                jaas+=" user_${u%%:*}=\"${u#*:}\""
            done
            echo "listener.name.client.plain.sasl.jaas.config=$jaas;"
        fi
        if [ "$authorizer" = 1 ]; then
            echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            echo "super.users=User:$ADMIN_USER;User:ANONYMOUS"
        fi
        local p
        for p in "${props[@]}"; do
            echo "$p"
        done
    } >"$dir/server.properties"

    cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/logs/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.raft=INFO
EOF

    # What `wait` needs to check this broker.
    {
        echo "port=$port"
        echo "node_id=$node_id"
        echo "proto=$proto"
    } >"$dir/kafka.env"

    # Format the storage once (a restart keeps the data).
    if [ ! -f "$dir/data/meta.properties" ]; then
        run_class kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
            -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 || {
            cat "$dir/logs/format.log" >&2
            die "formatting $dir/data failed"
        }
    fi

    # shellcheck disable=SC2086
    setsid "$JAVA" -Xmx"$heap" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dkafka.logs.dir="$dir/logs" -Dlog4j.configuration="file:$dir/log4j.properties" \
        -Dchangetrack.kafka.dir="$dir" \
        -cp "$(classpath)" kafka.Kafka "$dir/server.properties" \
        </dev/null >"$dir/logs/kafka.out" 2>&1 &
    echo $! >"$dir/kafka.pid"
    echo "kafka.sh: broker node $node_id (Kafka $VERSION, pid $!) on 127.0.0.1:$port ($proto), controller 127.0.0.1:$cport, dir $dir" >&2
    if [ "$wait" = 1 ]; then
        wait_ready "$dir" "$timeout"
    fi
}

log_tail() {
    local dir=$1
    echo "---- errors in $dir/logs/server.log" >&2
    grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$dir/logs/server.log" 2>/dev/null | tail -n 5 | cut -c1-400 >&2 || true
    echo "---- tail of $dir/logs/server.log" >&2
    tail -n 40 "$dir/logs/server.log" >&2 2>/dev/null || true
    echo "---- tail of $dir/logs/kafka.out" >&2
    tail -n 20 "$dir/logs/kafka.out" >&2 2>/dev/null || true
}

# Succeeds when the broker lists itself (unfenced) in a metadata answer.
probe() {
    local port=$1 node_id=$2 proto=$3 out
    if command -v "$KCAT" >/dev/null 2>&1; then
        local -a sasl=()
        if [ "$proto" = SASL_PLAINTEXT ]; then
            sasl=(-X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN
                -X "sasl.username=$ADMIN_USER" -X "sasl.password=$ADMIN_PASSWORD")
        fi
        out=$("$KCAT" -L -b "127.0.0.1:$port" "${sasl[@]}" -m 5 -t __changetrack_probe_none \
            -X allow.auto.create.topics=false 2>/dev/null) || return 1
        grep -q "broker $node_id at " <<<"$out" # (at the advertised address, which --prop may change)
    else
        local cfg
        cfg=$(mktemp)
        if [ "$proto" = SASL_PLAINTEXT ]; then
            client_config "$ADMIN_USER:$ADMIN_PASSWORD" >"$cfg"
        fi
        out=$(run_class kafka.admin.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" \
            --command-config "$cfg" 2>/dev/null) || { rm -f "$cfg"; return 1; }
        rm -f "$cfg"
        grep -q "(id: $node_id rack" <<<"$out"
    fi
}

wait_ready() {
    local dir=$1 timeout=$2 pid port node_id proto deadline
    [ -f "$dir/kafka.env" ] && [ -f "$dir/kafka.pid" ] || die "no broker was started from $dir"
    port=$(sed -n 's/^port=//p' "$dir/kafka.env")
    node_id=$(sed -n 's/^node_id=//p' "$dir/kafka.env")
    proto=$(sed -n 's/^proto=//p' "$dir/kafka.env")
    pid=$(cat "$dir/kafka.pid")
    deadline=$((SECONDS + timeout))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log_tail "$dir"
            die "the broker in $dir (pid $pid) exited"
        fi
        if probe "$port" "$node_id" "$proto"; then
            echo "kafka.sh: broker node $node_id ready on 127.0.0.1:$port" >&2
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tail "$dir"
            die "the broker in $dir did not answer on 127.0.0.1:$port within ${timeout}s"
        fi
        sleep 1
    done
}

cmd_wait() {
    local dir="" timeout=90
    while [ $# -gt 0 ]; do
        case $1 in
        --dir) dir=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        *) die "wait: unknown argument: $1" ;;
        esac
    done
    [ -n "$dir" ] || die "wait: --dir is required"
    wait_ready "$(cd "$dir" && pwd)" "$timeout"
}

stop() {
    local -a dirs=() pids=() live=()
    local dir pid i
    while [ $# -gt 0 ]; do
        case $1 in
        --dir) dirs+=("$2"); shift 2 ;;
        *) die "stop: unknown argument: $1" ;;
        esac
    done
    [ "${#dirs[@]}" -gt 0 ] || die "stop: --dir is required"
    # TERM every broker first, then wait for all: the nodes of one quorum stop together (the last
    # node left alone would wait for a controller until it is KILLed)
    for dir in "${dirs[@]}"; do
        if [ ! -f "$dir/kafka.pid" ]; then
            echo "kafka.sh: no $dir/kafka.pid: nothing to stop" >&2
            continue
        fi
        dir=$(cd "$dir" && pwd)
        pid=$(cat "$dir/kafka.pid")
        # only a java process started from this dir (the pid may have been reused)
        if ! kill -0 "$pid" 2>/dev/null ||
            ! tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qx -- "-Dchangetrack.kafka.dir=$dir"; then
            echo "kafka.sh: broker $pid of $dir is not running" >&2
            rm -f "$dir/kafka.pid"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
        live+=("$dir")
    done
    for ((i = 0; i < 200; i++)); do
        local any=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && any=1
        done
        [ "$any" = 1 ] || break
        sleep 0.1
    done
    for ((i = 0; i < ${#pids[@]}; i++)); do
        pid=${pids[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            echo "kafka.sh: broker $pid did not stop within 20 s: KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
        rm -f "${live[$i]}/kafka.pid"
        echo "kafka.sh: broker $pid of ${live[$i]} stopped" >&2
    done
}

# --- topics ------------------------------------------------------------------------------------

client_config() {
    echo "security.protocol=SASL_PLAINTEXT"
    echo "sasl.mechanism=PLAIN"
    echo "sasl.jaas.config=$(jaas_plain_client "$1")"
}

create_topic() {
    local bootstrap="" topic="" partitions=1 replication=1 user=""
    local -a configs=()
    while [ $# -gt 0 ]; do
        case $1 in
        --bootstrap) bootstrap=$2; shift 2 ;;
        --topic) topic=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        --replication) replication=$2; shift 2 ;;
        --sasl-user) check_user "$2"; user=$2; shift 2 ;;
        --config) configs+=(--config "$2"); shift 2 ;;
        *) die "create-topic: unknown argument: $1" ;;
        esac
    done
    [ -n "$bootstrap" ] && [ -n "$topic" ] || die "create-topic: --bootstrap and --topic are required"
    require_setup
    local cfg rc=0
    cfg=$(mktemp)
    [ -z "$user" ] || client_config "$user" >"$cfg"
    run_class "$(cat "$CACHE/topic-command")" --bootstrap-server "$bootstrap" --command-config "$cfg" \
        --create --topic "$topic" --partitions "$partitions" --replication-factor "$replication" \
        "${configs[@]}" || rc=$?
    rm -f "$cfg"
    return "$rc"
}

acl() {
    local bootstrap="" user="$ADMIN_USER:$ADMIN_PASSWORD"
    while [ $# -gt 0 ]; do
        case $1 in
        --bootstrap) bootstrap=$2; shift 2 ;;
        --sasl-user) check_user "$2"; user=$2; shift 2 ;;
        *) break ;;
        esac
    done
    [ -n "$bootstrap" ] || die "acl: --bootstrap is required"
    require_setup
    local cfg rc=0 cls=kafka.admin.AclCommand
    [ -f "$LIBS/kafka_2.13-$VERSION.jar" ] && (cd "$LIBS" && jar tf "kafka_2.13-$VERSION.jar") |
        grep -q '^kafka/admin/AclCommand.class$' || cls=org.apache.kafka.tools.AclCommand
    cfg=$(mktemp)
    client_config "$user" >"$cfg"
    run_class "$cls" --bootstrap-server "$bootstrap" --command-config "$cfg" "$@" || rc=$?
    rm -f "$cfg"
    return "$rc"
}

# --- main --------------------------------------------------------------------------------------

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
setup) setup ;;
start) start "$@" ;;
wait) cmd_wait "$@" ;;
stop) stop "$@" ;;
create-topic) create_topic "$@" ;;
acl) acl "$@" ;;
run) [ $# -ge 1 ] || usage; run_class "$@" ;;
classpath) require_setup; classpath ;;
-h | --help | help) usage ;;
*) die "unknown command: $cmd (setup, start, wait, stop, create-topic, acl, run, classpath)" ;;
esac
