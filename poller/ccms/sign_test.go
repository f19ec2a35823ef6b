package ccms

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

type signVectors struct {
	AK, SK, Time, Method, Path, Body string
	Vectors                          []struct {
		Name          string
		Headers       map[string]string
		Canonical     string
		SigningKey    string
		Authorization string
	}
}

func loadSignVectors(t *testing.T) signVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/sign-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v signVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) != 2 {
		t.Fatalf("want the two documented vectors, got %d", len(v.Vectors))
	}
	return v
}

func TestSignerMatchesTheDocumentedVectors(t *testing.T) {
	v := loadSignVectors(t)
	at, err := time.Parse(time.RFC3339, v.Time)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range v.Vectors {
		t.Run(tc.Name, func(t *testing.T) {
			var names []string
			for k := range tc.Headers {
				names = append(names, k)
			}
			slices.Sort(names)
			s := signer{ak: v.AK, sk: Secret(v.SK), headers: names}

			if got := canonicalRequest(v.Method, v.Path, names, tc.Headers, []byte(v.Body), variant{}); got != tc.Canonical {
				t.Errorf("canonical request:\n got %q\nwant %q", got, tc.Canonical)
			}
			prefix := strings.Join(strings.Split(tc.Authorization, "/")[:4], "/")
			if got := hmacHex(v.SK, prefix); got != tc.SigningKey {
				t.Errorf("signing key = %s, want %s", got, tc.SigningKey)
			}
			if got := s.authorization(at, v.Method, v.Path, tc.Headers, []byte(v.Body)); got != tc.Authorization {
				t.Errorf("authorization:\n got %s\nwant %s", got, tc.Authorization)
			}
		})
	}
}

func TestSignerTimestampWithMillisecondsChangesOnlyTheTimestampAndSignature(t *testing.T) {
	v := loadSignVectors(t)
	at := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, time.FixedZone("UTC+8", 8*3600))
	s := signer{ak: v.AK, sk: Secret(v.SK), headers: []string{"host"}, millis: true}
	got := s.authorization(at, v.Method, v.Path, v.Vectors[0].Headers, []byte(v.Body))
	wantPrefix := "auth-v2/example-ak/2025-01-01T19:04:05.123Z/host/"
	if !strings.HasPrefix(got, wantPrefix) {
		t.Fatalf("authorization %s does not start with %s", got, wantPrefix)
	}
	s.millis = false
	if sec := s.authorization(at, v.Method, v.Path, v.Vectors[0].Headers, []byte(v.Body)); !strings.HasPrefix(sec, "auth-v2/example-ak/2025-01-01T19:04:05Z/host/") {
		t.Errorf("seconds timestamp: %s", sec)
	}
}

func TestNormalizeKeepsOnlyUnreservedCharacters(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unreserved characters pass through", "AZaz09-._~", "AZaz09-._~"},
		{"a space is %20, never +", "a b", "a%20b"},
		{"hex digits are upper case", "/:;=,{}\"", "%2F%3A%3B%3D%2C%7B%7D%22"},
		{"every UTF-8 byte is encoded", "é", "%C3%A9"},
		{"plus and percent are encoded", "+%", "%2B%25"},
		{"the empty string stays empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalize(tc.in); got != tc.want {
				t.Errorf("normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// The A2/A4 switches change the canonical request exactly where the ports of
// the C2 demo differ from Huawei's code, and nothing else.
func TestSignerVariantsChangeOnlyTheirOwnPartOfTheCanonicalRequest(t *testing.T) {
	v := loadSignVectors(t)
	tc := v.Vectors[1] // content-length;content-type;host
	names := make([]string, 0, len(tc.Headers))
	for k := range tc.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	head, rest, _ := strings.Cut(tc.Canonical, v.Path+"\n")
	head += v.Path + "\n"
	headerPart := strings.TrimSuffix(rest, normalize(v.Body))
	tests := []struct {
		name string
		v    variant
		want string
	}{
		{"the zero variant is the documented vector", variant{}, tc.Canonical},
		{"an empty query line follows the path", variant{emptyQueryLine: true}, head + "\n" + headerPart + normalize(v.Body)},
		{"a blank line precedes the body", variant{blankLine: true}, head + headerPart + "\n" + normalize(v.Body)},
		{"both at once", variant{emptyQueryLine: true, blankLine: true}, head + "\n" + headerPart + "\n" + normalize(v.Body)},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			if got := canonicalRequest(v.Method, v.Path, names, tc.Headers, []byte(v.Body), c.v); got != c.want {
				t.Errorf("canonical request:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestSignerBase64EncodesTheSameMACAsHex(t *testing.T) {
	v := loadSignVectors(t)
	tc := v.Vectors[0]
	at, err := time.Parse(time.RFC3339, v.Time)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(tc.Headers))
	for k := range tc.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	s := signer{ak: v.AK, sk: Secret(v.SK), headers: names, variant: variant{base64: true}}
	got := strings.Split(s.authorization(at, v.Method, v.Path, tc.Headers, []byte(v.Body)), "/")
	want := strings.Split(tc.Authorization, "/")
	if strings.Join(got[:4], "/") != strings.Join(want[:4], "/") {
		t.Fatalf("prefix changed: %v vs %v", got[:4], want[:4])
	}
	mac, err := base64.StdEncoding.DecodeString(got[4])
	if err != nil {
		t.Fatalf("signature %q is not Base64: %v", got[4], err)
	}
	if hex.EncodeToString(mac) != want[4] {
		t.Errorf("Base64 signature decodes to %x, want the hex vector %s", mac, want[4])
	}
}
