package publisher

import (
	"errors"
	"fmt"
	"strings"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("publisher closed")

// ErrTooLarge says an event is larger than MaxMessageBytes: its batch failed
// before anything was sent. Retrying cannot help; check Event.Size first.
var ErrTooLarge = errors.New("event larger than the topic accepts (CALLPUB_KAFKA_MAX_MESSAGE_BYTES)")

// PublishError is every error of Publish, PublishControl and PublishDLQ. Failed lists the
// ids of the events Kafka did not acknowledge; events not listed were
// acknowledged, unless Unknown is set. Callers must not mark any event seen
// when they get a PublishError: retrying the whole batch is safe (event ids
// are deterministic, so consumers drop the duplicates) and keeps the stream's
// order.
type PublishError struct {
	Topic   string
	Events  int      // events in the call
	Failed  []string // ids not acknowledged; with Unknown, every id in the call
	Unknown bool     // ctx ended first: any of the events may still be written
	Err     error    // the distinct causes, joined; a *TopicError when the topic does not exist
}

func (e *PublishError) Error() string {
	ids := e.Failed
	more := ""
	if len(ids) > 3 {
		ids, more = ids[:3], fmt.Sprintf(" and %d more", len(e.Failed)-3)
	}
	what := "failed"
	if e.Unknown {
		what = "have an unknown outcome"
	}
	return fmt.Sprintf("publish to %q: %d of %d events %s (%s%s): %v",
		e.Topic, len(e.Failed), e.Events, what, strings.Join(ids, ", "), more, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// TopicError says a topic is missing or unusable.
type TopicError struct {
	Topic   string
	Brokers []string
	Missing bool  // the brokers do not know the topic
	Err     error // what Kafka said
}

func (e *TopicError) Error() string {
	if e.Missing {
		return fmt.Sprintf("kafka topic %q does not exist on brokers %s: create it (auto-creation is off)",
			e.Topic, strings.Join(e.Brokers, ","))
	}
	return fmt.Sprintf("kafka topic %q on brokers %s: %v", e.Topic, strings.Join(e.Brokers, ","), e.Err)
}

func (e *TopicError) Unwrap() error { return e.Err }
