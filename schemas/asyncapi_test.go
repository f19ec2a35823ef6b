package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// asyncAPI reads schemas/asyncapi.yaml. It is JSON-compatible YAML: leading
// '#' comment lines, then strict JSON (YAML 1.2 is a superset of JSON), so no
// YAML library is needed to check it structurally.
func asyncAPI(t *testing.T) map[string]any {
	t.Helper()
	raw, err := Files.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	inHeader := true
	for sc.Scan() {
		line := sc.Text()
		if inHeader && strings.HasPrefix(line, "#") {
			continue
		}
		inHeader = false
		body.WriteString(line + "\n")
	}
	var doc map[string]any
	dec := json.NewDecoder(&body)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("asyncapi.yaml is not JSON-compatible YAML after its comment header: %v", err)
	}
	return doc
}

// walk calls f on every "$ref" value in v.
func walk(v any, f func(ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				f(s)
			}
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

// pointer resolves a local JSON pointer like "#/components/messages/x".
func pointer(doc map[string]any, ref string) (any, bool) {
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestAsyncAPIDescribesEveryTopicAndEveryMessage(t *testing.T) {
	doc := asyncAPI(t)
	if doc["asyncapi"] != "3.0.0" {
		t.Errorf("asyncapi = %v, want 3.0.0", doc["asyncapi"])
	}
	// Every reference resolves: local pointers inside the document, files
	// to a schema embedded beside it.
	var files []string
	walk(doc, func(ref string) {
		switch {
		case strings.HasPrefix(ref, "#/"):
			if _, ok := pointer(doc, ref); !ok {
				t.Errorf("dangling reference %s", ref)
			}
		case strings.HasPrefix(ref, "./"):
			name, fragment, _ := strings.Cut(strings.TrimPrefix(ref, "./"), "#")
			b, err := fs.ReadFile(Files, name)
			if err != nil {
				t.Errorf("reference %s: %v", ref, err)
				return
			}
			if fragment != "" { // a pointer into the schema: the data of binary mode
				var schema map[string]any
				if err := json.Unmarshal(b, &schema); err != nil {
					t.Fatal(err)
				}
				if _, ok := pointer(schema, "#"+fragment); !ok {
					t.Errorf("reference %s: no %s in %s", ref, fragment, name)
				}
			}
			files = append(files, name)
		default:
			t.Errorf("reference %s is neither local nor a file beside the document", ref)
		}
	})
	// Every type's schema is some message's payload.
	for _, typ := range Types() {
		name := strings.TrimPrefix(SchemaFor(typ), SchemaBase)
		if !slices.Contains(files, name) {
			t.Errorf("no message uses %s (%s)", name, typ)
		}
	}
	// Every topic, each with a Kafka binding naming it, and messages keyed by VDN.
	channels, _ := doc["channels"].(map[string]any)
	want := map[string]string{"callsCompleted": "cc.calls.completed", "streamControl": "cc.calls.control",
		"rowsQuarantined": "cc.calls.dlq"}
	if len(channels) != len(want) {
		t.Errorf("%d channels, want %d: a new topic needs its line here", len(channels), len(want))
	}
	for id, topic := range want {
		ch, ok := channels[id].(map[string]any)
		if !ok {
			t.Errorf("channel %s missing", id)
			continue
		}
		if ch["address"] != topic {
			t.Errorf("channel %s address = %v, want %s", id, ch["address"], topic)
		}
		if got, _ := pointer(ch, "#/bindings/kafka/topic"); got != topic {
			t.Errorf("channel %s kafka binding topic = %v, want %s", id, got, topic)
		}
	}
	msgs, _ := pointer(doc, "#/components/messages")
	for name, m := range msgs.(map[string]any) {
		key, ok := pointer(m.(map[string]any), "#/bindings/kafka/key/pattern")
		if !ok || key != "^[1-9][0-9]{0,3}$" {
			t.Errorf("message %s: kafka key pattern = %v, want the VDN decimal pattern", name, key)
		}
		if ct, _ := pointer(m.(map[string]any), "#/contentType"); ct != ContentType {
			t.Errorf("message %s: contentType = %v", name, ct)
		}
		typ, _ := pointer(m.(map[string]any), "#/name")
		if SchemaFor(typ.(string)) == "" {
			t.Errorf("message %s is named %v, not an event type", name, typ)
		}
	}
}

// The partition-key pattern of the envelope schema and the AsyncAPI key
// must agree with what the encoder writes for the extreme VDNs.
func TestPartitionKeyPatternCoversEveryVDN(t *testing.T) {
	enc := newEncoder(t, EncoderOptions{PII: PIIPlain})
	for _, vdn := range []int{1, 9, 10, 999, 1000, 5000} {
		c := answeredCall()
		c.VDN = vdn
		ev, err := enc.CallCompleted(c, false)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		if err := Validate(b); err != nil {
			t.Errorf("vdn %d: %v", vdn, err)
		}
	}
}

// Every type is a message of the channel of its topic: unended calls beside
// completed ones, both day-sealed versions on the control topic. callpub's
// send operations list every type it writes, and day-sealed v1, which it no
// longer writes, stays only on the channel, for the records already there.
func TestAsyncAPIPutsEveryTypeOnItsTopic(t *testing.T) {
	doc := asyncAPI(t)
	want := map[string]string{
		TypeCallCompleted: "callsCompleted", TypeCallUnended: "callsCompleted",
		TypeGap: "streamControl", TypeSuspect: "streamControl", TypeDaySealed: "streamControl", TypeDaySealedV1: "streamControl",
		TypeHeartbeat: "streamControl", TypeQuarantined: "rowsQuarantined",
	}
	if len(want) != len(Types()) {
		t.Fatalf("%d types here, %d in Types(): a new type needs its line", len(want), len(Types()))
	}
	messageType := func(ref string) string { return messageName(t, doc, ref) }
	onChannel := map[string]string{}
	channels, _ := doc["channels"].(map[string]any)
	for id, ch := range channels {
		msgs, _ := pointer(ch.(map[string]any), "#/messages")
		for name := range msgs.(map[string]any) {
			onChannel[messageType("#/channels/"+id+"/messages/"+name)] = id
		}
	}
	sent := map[string]bool{}
	ops, _ := doc["operations"].(map[string]any)
	for _, op := range ops {
		for _, ref := range op.(map[string]any)["messages"].([]any) {
			sent[messageType(ref.(map[string]any)["$ref"].(string))] = true
		}
	}
	for typ, ch := range want {
		if onChannel[typ] != ch {
			t.Errorf("%s is on channel %q, want %s", typ, onChannel[typ], ch)
		}
		if sent[typ] == (typ == TypeDaySealedV1) {
			t.Errorf("%s: sent by an operation is %v", typ, sent[typ])
		}
	}
}

// messageName follows ref (an operation's message refers to a channel's,
// which refers to a component) to a message and returns its name.
func messageName(t *testing.T, doc map[string]any, ref string) string {
	t.Helper()
	for range 3 {
		m, ok := pointer(doc, ref)
		if !ok {
			t.Fatalf("dangling reference %s", ref)
		}
		mm := m.(map[string]any)
		next, ok := mm["$ref"].(string)
		if !ok {
			name, _ := mm["name"].(string)
			return name
		}
		ref = next
	}
	t.Fatalf("reference %s does not end at a message", ref)
	return ""
}

// Every message describes both content modes: the binding's headers, and a
// payload that is the whole event (structured) or its data (binary).
func TestAsyncAPIDescribesBothContentModes(t *testing.T) {
	doc := asyncAPI(t)
	msgs, _ := pointer(doc, "#/components/messages")
	for name, m := range msgs.(map[string]any) {
		mm := m.(map[string]any)
		if ref, _ := pointer(mm, "#/headers/$ref"); ref != "#/components/schemas/cloudEventsHeaders" {
			t.Errorf("message %s: headers %v, want the binding's", name, ref)
		}
		modes, _ := pointer(mm, "#/payload/schema/oneOf")
		list, _ := modes.([]any)
		if len(list) != 2 {
			t.Errorf("message %s: %d payload alternatives, want structured and binary", name, len(list))
			continue
		}
		whole, _ := pointer(list[0].(map[string]any), "#/$ref")
		data, _ := pointer(list[1].(map[string]any), "#/$ref")
		if data != whole.(string)+"#/$defs/data" {
			t.Errorf("message %s: binary payload %v, want the data of %v", name, data, whole)
		}
	}
}

// The headers of every golden record, both modes, are what the AsyncAPI
// document says: each one it knows, the required ones present, the content
// type one it lists.
func TestGoldenRecordHeadersAreTheDocumentedOnes(t *testing.T) {
	doc := asyncAPI(t)
	h, ok := pointer(doc, "#/components/schemas/cloudEventsHeaders")
	if !ok {
		t.Fatal("no cloudEventsHeaders schema")
	}
	props := h.(map[string]any)["properties"].(map[string]any)
	contentTypes := props["content-type"].(map[string]any)["enum"].([]any)
	events := goldenEvents(t)
	for _, mode := range []Mode{Structured, Binary} {
		for _, name := range recordGoldens {
			r, err := events[name].Record(mode)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, hd := range r.Headers {
				if _, ok := props[hd.Key]; !ok {
					t.Errorf("%s %s: header %s is not documented", mode, name, hd.Key)
				}
				got[hd.Key] = string(hd.Value)
			}
			for _, req := range h.(map[string]any)["required"].([]any) {
				if _, ok := got[req.(string)]; !ok {
					t.Errorf("%s %s: required header %s missing", mode, name, req)
				}
			}
			if !slices.Contains(contentTypes, any(got["content-type"])) {
				t.Errorf("%s %s: content-type %q is not documented", mode, name, got["content-type"])
			}
		}
	}
}
