// Command sarama-driver is the Go (IBM/sarama) Kafka consumer driver of the changetrack client
// tests. Its command line, output and exit codes follow ../README.md:
//
//	sarama-driver consume --bootstrap HOST:PORT --topic NAME --user USER --group GROUP_ID
//	    [--mode assign|subscribe] [--start earliest|latest|committed|time-s:SECS|time-ms:MS|offset:N]
//	    [--until-end] [--max-records N] [--run-seconds S] [--commit] [--client-id ID]
//	    [--session-timeout-ms MS] [--no-sasl]
//
// It uses sarama v1.40.0 (the version pinned by Alibaba's DTS Go demo, the first release under
// the github.com/IBM/sarama name) configured the way that demo does: config.Version =
// sarama.V0_11_0_0 and SASL/PLAIN with the library's default handshake settings, which in 1.40.0
// are Net.SASL.Handshake = true, Net.SASL.Version = SASLHandshakeV0: SaslHandshake v0 and the raw
// (unframed) PLAIN token, no ApiVersions request (sarama 1.40 sends one only for Version >= 2.4).
// Username USER-GROUP_ID, password from CT_KAFKA_PASSWORD. See NOTES.md for newer sarama.
//
// Assign mode: sarama Client + Consumer/PartitionConsumer on partition 0; positions from
// Client.GetOffset (ListOffsets; the time is passed as given), committed offset and metadata from
// an OffsetManager (OffsetFetch), commits as the OffsetCommitRequest that sarama's offset manager
// builds, sent to the coordinator directly so that every commit's result is known. Subscribe mode: a ConsumerGroup whose
// handler prints each assignment; commits carry the session's generation and member id.
//
// CT_DRIVER_DEBUG=1 sends sarama.Logger and sarama.DebugLogger to standard error.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

const (
	exitOK        = 0
	exitOther     = 1
	exitAuth      = 3
	exitGroupAuth = 4
	exitNoOffset  = 5

	authDeadline   = 30 * time.Second  // authentication failures are reported within 30 s
	defaultGiveUp  = 120 * time.Second // without --run-seconds
	requestTimeout = 20 * time.Second
	watchdogGrace  = 30 * time.Second // hard exit this long after --run-seconds / the give-up limit
)

// ---------------------------------------------------------------------------------------------
// output

var outMu sync.Mutex

func emit(v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(buf.Bytes()) // os.Stdout is unbuffered: one write per line
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "driver: "+format+"\n", a...)
}

type seekEvent struct {
	Event  string `json:"event"`
	Offset *int64 `json:"offset"`
}

type fetchedCommitEvent struct {
	Event    string  `json:"event"`
	Offset   *int64  `json:"offset"`
	Metadata *string `json:"metadata"`
}

type assignedEvent struct {
	Event      string  `json:"event"`
	Partitions []int32 `json:"partitions"`
}

type recordEvent struct {
	Event       string  `json:"event"`
	Offset      int64   `json:"offset"`
	TimestampMs int64   `json:"timestamp_ms"`
	Key         *string `json:"key"`
	Value       *string `json:"value"`
}

type committedEvent struct {
	Event    string `json:"event"`
	Offset   int64  `json:"offset"`
	Metadata string `json:"metadata"`
}

type errorEvent struct {
	Event   string `json:"event"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

type endEvent struct {
	Event   string `json:"event"`
	Records int64  `json:"records"`
}

func b64(b []byte) *string {
	if b == nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// driverError ends the run with an error event of the given kind (none for exitNoOffset).
type driverError struct {
	code int
	kind string
	msg  string
}

func (e *driverError) Error() string { return e.kind + ": " + e.msg }

func failf(kind string, format string, a ...any) *driverError {
	code := exitOther
	switch kind {
	case "auth":
		code = exitAuth
	case "group_auth":
		code = exitGroupAuth
	}
	return &driverError{code: code, kind: kind, msg: fmt.Sprintf(format, a...)}
}

// ---------------------------------------------------------------------------------------------
// command line

type options struct {
	bootstrap, topic, user, group, mode, start string
	startKind                                  string
	startN                                     int64
	untilEnd, commit, noSASL                   bool
	maxRecords                                 int64 // -1: none
	runSeconds                                 float64
	hasRunSeconds                              bool
	clientID                                   string
	sessionTimeoutMs                           int
	password                                   string
	// credGroup is the group of the credentials (USER-credGroup); group is group.id (--group-id).
	credGroup string
}

func parseArgs(argv []string) (*options, error) {
	if len(argv) < 1 || argv[0] != "consume" {
		return nil, errors.New("usage: sarama-driver consume --bootstrap HOST:PORT --topic NAME --user USER --group GROUP_ID [options]")
	}
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.bootstrap, "bootstrap", "", "HOST:PORT")
	fs.StringVar(&o.topic, "topic", "", "topic")
	fs.StringVar(&o.user, "user", "", "user (SASL username USER-GROUP_ID)")
	fs.StringVar(&o.group, "group", "", "group.id")
	fs.StringVar(&o.mode, "mode", "assign", "assign|subscribe")
	fs.StringVar(&o.start, "start", "committed", "earliest|latest|committed|time-s:SECS|time-ms:MS|offset:N")
	fs.BoolVar(&o.untilEnd, "until-end", false, "stop at the end offset read once")
	fs.Int64Var(&o.maxRecords, "max-records", -1, "stop after N records")
	runSeconds := fs.String("run-seconds", "", "stop after S seconds")
	fs.BoolVar(&o.commit, "commit", false, "commit after every poll with records")
	fs.StringVar(&o.clientID, "client-id", "", "client id")
	fs.IntVar(&o.sessionTimeoutMs, "session-timeout-ms", 0, "group session timeout")
	fs.BoolVar(&o.noSASL, "no-sasl", false, "PLAINTEXT instead of SASL_PLAINTEXT")
	groupID := fs.String("group-id", "", "group.id instead of GROUP_ID")
	if err := fs.Parse(argv[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.bootstrap == "" || o.topic == "" || o.user == "" || o.group == "" {
		return nil, errors.New("--bootstrap, --topic, --user and --group are required")
	}
	o.credGroup = o.group
	if *groupID != "" {
		o.group = *groupID
	}
	if o.mode != "assign" && o.mode != "subscribe" {
		return nil, fmt.Errorf("bad --mode %q", o.mode)
	}
	if *runSeconds != "" {
		v, err := strconv.ParseFloat(*runSeconds, 64)
		if err != nil {
			return nil, fmt.Errorf("bad --run-seconds %q", *runSeconds)
		}
		o.runSeconds, o.hasRunSeconds = v, true
	}
	switch {
	case o.start == "earliest" || o.start == "latest" || o.start == "committed":
		o.startKind = o.start
	default:
		ok := false
		for _, k := range []string{"time-s", "time-ms", "offset"} {
			if rest, found := strings.CutPrefix(o.start, k+":"); found {
				n, err := strconv.ParseInt(rest, 10, 64)
				if err == nil {
					o.startKind, o.startN, ok = k, n, true
				}
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("bad --start %q", o.start)
		}
	}
	o.password = os.Getenv("CT_KAFKA_PASSWORD")
	return o, nil
}

// ---------------------------------------------------------------------------------------------
// error classification

func classify(err error) string {
	var kerr sarama.KError
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed):
		return "auth"
	case errors.Is(err, sarama.ErrGroupAuthorizationFailed):
		return "group_auth"
	case errors.As(err, &kerr) && kerr == sarama.ErrSASLAuthenticationFailed:
		return "auth"
	}
	return "other"
}

func libFail(what string, err error) *driverError {
	var de *driverError
	if errors.As(err, &de) {
		return de
	}
	return failf(classify(err), "%s: %v", what, err)
}

func reachable(bootstrap string) bool {
	addr := strings.Split(bootstrap, ",")[0]
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// ---------------------------------------------------------------------------------------------
// the run

type run struct {
	o        *options
	cfg      *sarama.Config
	client   sarama.Client
	t0       time.Time
	deadline time.Time // --run-seconds or the give-up limit

	mu        sync.Mutex
	records   int64
	lastOff   int64 // -1: none
	lastTs    int64
	endOffset int64 // -1: not read
	position  int64 // next offset of partition 0 while held, -1 unknown
	holdsP0   bool
}

func (r *run) maxReached() bool { return r.o.maxRecords >= 0 && r.records >= r.o.maxRecords }

func (r *run) endReached() bool {
	return r.o.untilEnd && r.holdsP0 && r.endOffset >= 0 && r.position >= 0 && r.position >= r.endOffset
}

// timeUp reports a clean stop (--run-seconds) or fails after the default give-up limit.
func (r *run) timeUp() (bool, error) {
	if time.Now().Before(r.deadline) {
		return false, nil
	}
	if r.o.hasRunSeconds {
		return true, nil
	}
	return false, failf("other", "no stop condition reached within %v (give-up limit)", defaultGiveUp)
}

func (r *run) record(m *sarama.ConsumerMessage) {
	emit(recordEvent{"record", m.Offset, m.Timestamp.UnixMilli(), b64(m.Key), b64(m.Value)})
	r.records++
	r.lastOff, r.lastTs = m.Offset, m.Timestamp.UnixMilli()
	r.position = m.Offset + 1
}

// commit sends OffsetCommit for partition 0: last record's offset + 1, metadata = its timestamp
// in seconds. generation -1 / member "" in assign mode (sarama's OffsetManager without a group).
// skipped reports a commit refused because the group is rebalancing (subscribe mode).
func (r *run) commit(generation int32, member string) (skipped bool, err error) {
	offset := r.lastOff + 1
	metadata := strconv.FormatInt(r.lastTs/1000, 10)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
			_ = r.client.RefreshCoordinator(r.o.group)
		}
		broker, err := r.client.Coordinator(r.o.group)
		if err != nil {
			lastErr = err
			if classify(err) != "other" {
				return false, libFail("commit: coordinator", err)
			}
			continue
		}
		// Exactly the request sarama 1.40's offsetManager.constructRequest builds (used by
		// OffsetManager.Commit and ConsumerGroupSession.Commit): OffsetCommit v1 whatever
		// config.Version says (v2 only with Consumer.Offsets.Retention set), per-partition
		// timestamp ReceiveTime (-1). Sent here directly so that the result is known: sarama
		// itself reports commit errors asynchronously and retries some of them silently.
		req := &sarama.OffsetCommitRequest{
			Version:                 1,
			ConsumerGroup:           r.o.group,
			ConsumerID:              member,
			ConsumerGroupGeneration: generation,
		}
		req.AddBlock(r.o.topic, 0, offset, sarama.ReceiveTime, metadata)
		resp, err := broker.CommitOffset(req)
		if err != nil {
			lastErr = err
			_ = broker.Close()
			continue
		}
		kerr := sarama.ErrIncompleteResponse
		if parts, ok := resp.Errors[r.o.topic]; ok {
			if e, ok := parts[0]; ok {
				kerr = e
			}
		}
		switch kerr {
		case sarama.ErrNoError:
			emit(committedEvent{"committed", offset, metadata})
			return false, nil
		case sarama.ErrNotCoordinatorForConsumer, sarama.ErrConsumerCoordinatorNotAvailable,
			sarama.ErrOffsetsLoadInProgress:
			lastErr = kerr
			continue
		case sarama.ErrRebalanceInProgress, sarama.ErrIllegalGeneration, sarama.ErrUnknownMemberId:
			if r.o.mode == "subscribe" {
				logf("commit of %d skipped during a rebalance: %v", offset, kerr)
				return true, nil
			}
		}
		return false, failf(classify(kerr), "commit: %v", kerr)
	}
	return false, libFail("commit", lastErr)
}

func (r *run) getOffset(t int64) (int64, error) {
	off, err := r.client.GetOffset(r.o.topic, 0, t)
	if err != nil {
		return 0, libFail(fmt.Sprintf("GetOffset(%d)", t), err)
	}
	return off, nil
}

func newConfig(o *options) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V0_11_0_0 // as in Alibaba's DTS Go demo
	if o.clientID != "" {
		cfg.ClientID = o.clientID
	}
	if !o.noSASL {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		cfg.Net.SASL.User = o.user + "-" + o.credGroup
		cfg.Net.SASL.Password = o.password
		// Handshake and Version keep sarama's defaults, like the demo (see the package comment).
	}
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Net.ReadTimeout = requestTimeout
	cfg.Net.WriteTimeout = requestTimeout
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Metadata.Retry.Max = 2
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest // auto.offset.reset=earliest
	if o.sessionTimeoutMs > 0 {
		cfg.Consumer.Group.Session.Timeout = time.Duration(o.sessionTimeoutMs) * time.Millisecond
		hb := cfg.Consumer.Group.Session.Timeout / 3
		if hb > 3*time.Second {
			hb = 3 * time.Second
		}
		cfg.Consumer.Group.Heartbeat.Interval = hb
	}
	return cfg
}

// connect creates the client, retrying while nothing answers, and tells authentication
// failures apart: sarama reports SaslAuthenticate error 58 as ErrSASLAuthenticationFailed
// (wrapped in ErrOutOfBrokers by NewClient).
func connect(o *options, cfg *sarama.Config) (sarama.Client, error) {
	deadline := time.Now().Add(authDeadline)
	for {
		client, err := sarama.NewClient(strings.Split(o.bootstrap, ","), cfg)
		if err == nil {
			return client, nil
		}
		if classify(err) == "auth" {
			return nil, failf("auth", "SASL authentication failed: %v", err)
		}
		var cerr sarama.ConfigurationError
		if errors.As(err, &cerr) {
			// e.g. a --client-id outside sarama 1.40's [A-Za-z0-9._-]+: no point in retrying
			return nil, failf("other", "NewClient: %v", err)
		}
		if !o.noSASL && reachable(o.bootstrap) && isConnClosed(err) {
			// The broker accepted TCP but closed the connection during SASL (legacy flow, or
			// an error response lost with the close).
			return nil, failf("auth", "connection closed during SASL authentication: %v", err)
		}
		if time.Now().After(deadline) {
			return nil, failf("other", "NewClient: %v", err)
		}
		logf("NewClient: %v (retrying)", err)
		time.Sleep(time.Second)
	}
}

func isConnClosed(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "SASL") || strings.Contains(s, "connection reset")
}

func waitTopic(r *run) error {
	deadline := time.Now().Add(authDeadline)
	for {
		parts, err := r.client.Partitions(r.o.topic)
		if err == nil {
			for _, p := range parts {
				if p == 0 {
					return nil
				}
			}
		} else if classify(err) != "other" {
			return libFail("metadata", err)
		}
		if time.Now().After(deadline) {
			return failf("other", "no metadata for topic %s partition 0 within %v (%v)", r.o.topic, authDeadline, err)
		}
		_ = r.client.RefreshMetadata(r.o.topic)
		time.Sleep(200 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------------------------
// assign mode

func runAssign(ctx context.Context, r *run) error {
	var start int64
	switch r.o.startKind {
	case "earliest":
		off, err := r.getOffset(sarama.OffsetOldest)
		if err != nil {
			return err
		}
		start = off
	case "latest":
		off, err := r.getOffset(sarama.OffsetNewest)
		if err != nil {
			return err
		}
		start = off
	case "committed":
		om, err := sarama.NewOffsetManagerFromClient(r.o.group, r.client)
		if err != nil {
			return libFail("NewOffsetManagerFromClient", err)
		}
		pom, err := om.ManagePartition(r.o.topic, 0) // OffsetFetch
		if err != nil {
			_ = om.Close()
			return libFail("committed", err)
		}
		off, meta := pom.NextOffset()
		// om.Close releases the partition manager too. (pom.Close alone blocks for ever in
		// sarama 1.40 with auto-commit off: only the auto-commit loop or om.Close release it.)
		pom.AsyncClose()
		_ = om.Close()
		if off >= 0 {
			emit(fetchedCommitEvent{"fetched_commit", &off, &meta})
			start = off
		} else {
			emit(fetchedCommitEvent{"fetched_commit", nil, nil})
			o, err := r.getOffset(sarama.OffsetOldest)
			if err != nil {
				return err
			}
			start = o
		}
	case "time-s", "time-ms":
		off, err := r.getOffset(r.o.startN) // the number as given
		if err != nil {
			return err
		}
		if off < 0 {
			emit(seekEvent{"seek", nil})
			return &driverError{code: exitNoOffset}
		}
		emit(seekEvent{"seek", &off})
		start = off
	case "offset":
		start = r.o.startN
	}
	r.holdsP0, r.position = true, start
	if r.o.untilEnd {
		end, err := r.getOffset(sarama.OffsetNewest)
		if err != nil {
			return err
		}
		r.endOffset = end
	}

	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return libFail("NewConsumerFromClient", err)
	}
	defer func() { _ = consumer.Close() }()
	var pc sarama.PartitionConsumer
	if !r.endReached() && !r.maxReached() {
		pc, err = consumer.ConsumePartition(r.o.topic, 0, start)
		if err != nil {
			return libFail(fmt.Sprintf("ConsumePartition(%d)", start), err)
		}
		defer func() { _ = pc.Close() }()
	}

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if r.maxReached() || r.endReached() {
			break
		}
		if up, err := r.timeUp(); err != nil {
			return err
		} else if up {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			continue
		case cerr := <-pc.Errors():
			return libFail("consume", cerr.Err)
		case m := <-pc.Messages():
			// One "poll": this message and whatever else is already buffered.
			r.record(m)
		drain:
			for !r.maxReached() && !r.endReached() {
				select {
				case m := <-pc.Messages():
					r.record(m)
				default:
					break drain
				}
			}
			if r.o.commit {
				if _, err := r.commit(sarama.GroupGenerationUndefined, ""); err != nil {
					return err
				}
			}
		}
	}
	if r.o.commit && r.lastOff >= 0 {
		if _, err := r.commit(sarama.GroupGenerationUndefined, ""); err != nil {
			return err
		}
	}
	emit(endEvent{"end", r.records})
	return nil
}

// ---------------------------------------------------------------------------------------------
// subscribe mode

type handler struct {
	r          *run
	generation int32         // of the last session (under r.mu)
	member     string        // member id of the last session (under r.mu)
	done       chan struct{} // closed when a stop condition is reached
	once       sync.Once
	errs       chan error
}

func (h *handler) stop() { h.once.Do(func() { close(h.done) }) }

func (h *handler) fail(err error) {
	select {
	case h.errs <- err:
	default:
	}
	h.stop()
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	ids := append([]int32{}, sess.Claims()[h.r.o.topic]...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	emit(assignedEvent{"assigned", ids})
	r := h.r
	r.mu.Lock()
	defer r.mu.Unlock()
	h.generation, h.member = sess.GenerationID(), sess.MemberID()
	r.holdsP0 = false
	for _, p := range ids {
		if p == 0 {
			r.holdsP0 = true
		}
	}
	r.position = -1
	if r.holdsP0 && r.o.untilEnd {
		end, err := r.getOffset(sarama.OffsetNewest)
		if err != nil {
			h.fail(err)
			return nil
		}
		r.endOffset = end
	}
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.r.mu.Lock()
	h.r.holdsP0 = false
	h.r.mu.Unlock()
	return nil
}

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	r := h.r
	if claim.Topic() != r.o.topic || claim.Partition() != 0 {
		return nil
	}
	r.mu.Lock()
	start := claim.InitialOffset() // the committed offset, or OffsetOldest when none
	if start < 0 {
		off, err := r.getOffset(start)
		if err != nil {
			r.mu.Unlock()
			h.fail(err)
			return nil
		}
		start = off
	}
	r.position = start
	if r.endReached() {
		r.mu.Unlock()
		h.stop()
		return nil
	}
	r.mu.Unlock()
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case <-h.done:
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			r.mu.Lock()
			r.record(m)
		drain:
			for !r.maxReached() && !r.endReached() {
				select {
				case m, ok := <-claim.Messages():
					if !ok {
						break drain
					}
					r.record(m)
				default:
					break drain
				}
			}
			if r.o.commit {
				if _, err := r.commit(sess.GenerationID(), sess.MemberID()); err != nil {
					r.mu.Unlock()
					h.fail(err)
					return nil
				}
			}
			stop := r.maxReached() || r.endReached()
			r.mu.Unlock()
			if stop {
				h.stop()
				return nil
			}
		}
	}
}

func runSubscribe(ctx context.Context, r *run) error {
	group, err := sarama.NewConsumerGroupFromClient(r.o.group, r.client)
	if err != nil {
		return libFail("NewConsumerGroupFromClient", err)
	}
	h := &handler{r: r, done: make(chan struct{}), errs: make(chan error, 1)}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumeDone := make(chan struct{})
	go func() {
		defer close(consumeDone)
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{r.o.topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) || cctx.Err() != nil {
					return
				}
				if classify(err) != "other" {
					h.fail(libFail("consume", err))
					return
				}
				logf("consume: %v (retrying)", err)
				time.Sleep(500 * time.Millisecond)
			}
		}
	}()

	var result error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			result = ctx.Err()
			break loop
		case <-h.done:
			select {
			case result = <-h.errs:
			default:
			}
			break loop
		case cerr := <-group.Errors():
			if cerr == nil {
				continue
			}
			if classify(cerr) != "other" {
				result = libFail("consumer group", cerr)
				break loop
			}
			logf("consumer group: %v", cerr)
		case <-tick.C:
			if up, err := r.timeUp(); err != nil {
				result = err
				break loop
			} else if up {
				break loop
			}
		}
	}
	h.stop()
	if result == nil && r.o.commit && r.lastOff >= 0 {
		// Once more before a clean exit, while the member is still in the group (LeaveGroup
		// is sent by group.Close below), with the generation of the last session.
		r.mu.Lock()
		_, result = r.commit(h.generation, h.member)
		r.mu.Unlock()
	}
	cancel()
	_ = group.Close()
	<-consumeDone
	if result == nil {
		emit(endEvent{"end", r.records})
	}
	return result
}

// ---------------------------------------------------------------------------------------------

func main() {
	os.Exit(mainExit())
}

func mainExit() int {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv("CT_DRIVER_DEBUG") != "" && os.Getenv("CT_DRIVER_DEBUG") != "0" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
		sarama.DebugLogger = sarama.Logger
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()

	err = runDriver(ctx, o)
	var de *driverError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &de):
		if de.kind != "" {
			emit(errorEvent{"error", de.kind, de.msg})
		}
		return de.code
	case ctx.Err() != nil:
		return 128 + int(syscall.SIGTERM) // left the group / closed cleanly, no end event
	default:
		emit(errorEvent{"error", classify(err), err.Error()})
		if k := classify(err); k == "auth" {
			return exitAuth
		} else if k == "group_auth" {
			return exitGroupAuth
		}
		return exitOther
	}
}

func runDriver(ctx context.Context, o *options) error {
	cfg := newConfig(o)
	logf("sarama (IBM/sarama), config.Version %s, SASL handshake v%d", cfg.Version, cfg.Net.SASL.Version)
	r := &run{o: o, cfg: cfg, t0: time.Now(), lastOff: -1, endOffset: -1, position: -1}
	limit := defaultGiveUp
	if o.hasRunSeconds {
		limit = time.Duration(o.runSeconds * float64(time.Second))
	}
	r.deadline = r.t0.Add(limit)
	// Watchdog: whatever blocks (a library call without a timeout), never wait for ever.
	go func() {
		time.Sleep(limit + watchdogGrace)
		emit(errorEvent{"error", "other", fmt.Sprintf("watchdog: still running %v after the time limit", watchdogGrace)})
		os.Exit(exitOther)
	}()
	client, err := connect(o, cfg)
	if err != nil {
		return err
	}
	r.client = client
	defer func() { _ = client.Close() }()
	if err := waitTopic(r); err != nil {
		return err
	}
	if o.mode == "assign" {
		return runAssign(ctx, r)
	}
	return runSubscribe(ctx, r)
}
