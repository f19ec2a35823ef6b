package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// A quarantine record goes to the optional dead-letter topic when a row of a
// window could not be decoded or used: the row itself, with its phone numbers
// treated by the encoder's policy, why it was refused, and where it was read.
// The good rows around it are published as usual.

// QuarantinedData is the data of a row.quarantined record
// (row-quarantined.v1.schema.json).
type QuarantinedData struct {
	streamData
	// WindowStart and WindowEnd are the window [start, end) whose read
	// returned the row.
	WindowStart Timestamp `json:"windowStart"`
	WindowEnd   Timestamp `json:"windowEnd"`
	// Reason says why the row is unusable. It is written as given: it must
	// not quote the row (the row's phone numbers are treated only in Row).
	Reason string `json:"reason"`
	// Row is the row: a JSON object when it was one, with every string or
	// number under a callerNo or calleeNo key (any letter case, any depth)
	// treated by NumberPolicy; otherwise a JSON string of its bytes, with
	// every digit replaced by '*' unless NumberPolicy is plain.
	Row json.RawMessage `json:"row"`
	// RowSHA256 is RowSum of the row as received, so a consumer can match a
	// report of the same row under another policy or window.
	RowSHA256    string    `json:"rowSha256"`
	NumberPolicy PIIMode   `json:"numberPolicy"`
	DetectedAt   Timestamp `json:"detectedAt"`
}

// RowSum identifies a raw row: the lower-case hex SHA-256 of its bytes as
// received. It is a quarantine record's rowSha256 and the key under which
// the store remembers that the row was reported.
func RowSum(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Quarantined encodes the quarantine record of raw, a row of stream s read in
// the window [windowStart, windowEnd) and refused for reason (which must not
// quote the row; "" becomes "unspecified"), detected at at (the event time).
// The id covers the stream, the window and RowSum(raw): reporting the same
// row of the same window again gives the same id.
func (e *Encoder) Quarantined(s Stream, windowStart, windowEnd time.Time, reason string, raw json.RawMessage, at time.Time) Event {
	windowStart, windowEnd = normaliseTime(windowStart), normaliseTime(windowEnd)
	if reason == "" {
		reason = "unspecified"
	}
	sum := RowSum(raw)
	d := QuarantinedData{
		streamData: streamOf(s), WindowStart: Timestamp{windowStart}, WindowEnd: Timestamp{windowEnd},
		Reason: reason, Row: e.treatRow(raw), RowSHA256: sum, NumberPolicy: e.opts.PII,
		DetectedAt: Timestamp{normaliseTime(at)},
	}
	return e.control(TypeQuarantined, SchemaQuarantined, quarantinedCanonical(s.Key(), windowStart, windowEnd, sum), s, at, d)
}

// quarantinedCanonical is the canonical string of a quarantine record's id.
func quarantinedCanonical(stream string, start, end time.Time, sum string) string {
	return fmt.Sprintf("ccms-row-quarantined/%s/%d/%d/%s", stream, ms(start), ms(end), sum)
}

// treatRow is raw as a quarantine record carries it (QuarantinedData.Row).
func (e *Encoder) treatRow(raw []byte) json.RawMessage {
	if isObject(raw) {
		w := newRowWalker(raw, e.treatNumber)
		if err := w.value(false); err == nil {
			return w.out.Bytes()
		}
	}
	s := string(raw)
	if e.opts.PII != PIIPlain {
		s = maskDigits(s)
	}
	b, err := json.Marshal(s) // invalid UTF-8 becomes U+FFFD; rowSha256 keeps the original
	if err != nil {
		panic(fmt.Sprintf("schemas: marshal a string: %v", err)) // cannot happen
	}
	return b
}

// isObject reports whether raw is one valid JSON object (json.Valid also
// bounds its nesting depth, which keeps rowWalker's recursion bounded).
func isObject(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(raw)
}

// maskDigits replaces every digit, in any script, by '*'.
func maskDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return '*'
		}
		return r
	}, s)
}

// treatNumber applies the policy to one value under a phone key: a string, or
// a number, which becomes a string unless the policy is plain.
func (e *Encoder) treatNumber(v any) (any, error) {
	if e.opts.PII == PIIPlain {
		return v, nil
	}
	switch v := v.(type) {
	case string:
		return e.applyPII(v), nil
	case json.Number:
		return e.applyPII(v.String()), nil
	}
	return v, nil
}

// phoneKey reports whether an object key names a phone number: callerNo or
// calleeNo in any letter case, since encoding/json (and so the CC-CMS client)
// matches keys that way.
func phoneKey(k string) bool {
	return strings.EqualFold(k, "callerNo") || strings.EqualFold(k, "calleeNo")
}

// rowWalker copies one valid JSON value token by token, keeping the order of
// keys and any duplicates, and passes every string or number under a phone
// key (at any depth, everything inside such a key included) through leaf.
type rowWalker struct {
	dec  *json.Decoder
	out  bytes.Buffer
	leaf func(v any) (any, error)
}

func newRowWalker(raw []byte, leaf func(v any) (any, error)) *rowWalker {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers keep their literal text
	return &rowWalker{dec: dec, leaf: leaf}
}

// value copies the next value; phone says it sits under a phone key.
func (w *rowWalker) value(phone bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		return w.container(v, phone)
	case string, json.Number:
		if phone {
			if tok, err = w.leaf(v); err != nil {
				return err
			}
		}
	}
	return w.write(tok)
}

// container copies an object or array whose opening delimiter was read.
func (w *rowWalker) container(open json.Delim, phone bool) error {
	isObj := open == '{'
	w.out.WriteByte(byte(open))
	for i := 0; w.dec.More(); i++ {
		if i > 0 {
			w.out.WriteByte(',')
		}
		inner := phone
		if isObj {
			tok, err := w.dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			if err := w.write(key); err != nil {
				return err
			}
			w.out.WriteByte(':')
			inner = phone || phoneKey(key)
		}
		if err := w.value(inner); err != nil {
			return err
		}
	}
	tok, err := w.dec.Token() // the closing delimiter
	if err != nil {
		return err
	}
	w.out.WriteByte(byte(tok.(json.Delim)))
	return nil
}

func (w *rowWalker) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.out.Write(b)
	return nil
}

// checkQuarantined checks what row-quarantined.v1.schema.json cannot: time is
// detectedAt, the window is not reversed, the id is the record's, and no
// phone number is left in the row unless the policy is plain. Its errors
// never quote the row.
func checkQuarantined(id, eventTime string, data json.RawMessage) error {
	var d QuarantinedData
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	if want := FormatTime(d.DetectedAt.Time); eventTime != want {
		return fmt.Errorf("time %s is not data.detectedAt %s", eventTime, want)
	}
	if d.WindowEnd.Before(d.WindowStart.Time) {
		return fmt.Errorf("data.windowEnd %s is before data.windowStart %s",
			FormatTime(d.WindowEnd.Time), FormatTime(d.WindowStart.Time))
	}
	if want := idOf(quarantinedCanonical(d.Stream, d.WindowStart.Time, d.WindowEnd.Time, d.RowSHA256)); id != want {
		return fmt.Errorf("id is not the id of the record (want %s)", want)
	}
	return checkRowPolicy(d.NumberPolicy, d.Row)
}

// checkRowPolicy checks that row is what treatRow gives under policy: a
// string without digits, or an object whose phone values are treated.
func checkRowPolicy(policy PIIMode, row json.RawMessage) error {
	if policy == PIIPlain {
		return nil
	}
	var s string
	if err := json.Unmarshal(row, &s); err == nil {
		if strings.ContainsFunc(s, unicode.IsDigit) {
			return fmt.Errorf("data.row is a string with digits under number policy %s", policy)
		}
		return nil
	}
	w := newRowWalker(row, func(v any) (any, error) {
		if s, ok := v.(string); ok && treated(policy, s) {
			return v, nil
		}
		return nil, fmt.Errorf("data.row holds a phone number not treated by number policy %s", policy)
	})
	return w.value(false)
}

var hashedNumber = regexp.MustCompile(`^[0-9a-f]{64}$`)

// treated reports whether s can be a phone number after policy (mask or
// hash): empty, 64 hex digits for hash, '*' but for at most the last 4
// characters for mask.
func treated(policy PIIMode, s string) bool {
	if s == "" {
		return true
	}
	if policy == PIIHash {
		return hashedNumber.MatchString(s)
	}
	r := []rune(s)
	n := len(r) - 4
	if n <= 0 {
		n = len(r)
	}
	for _, c := range r[:n] {
		if c != '*' {
			return false
		}
	}
	return true
}
