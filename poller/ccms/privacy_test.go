package ccms

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// plantedPhone is a phone number planted in bodies and rows: no error text,
// reason or formatted value may show it (nor the planted SK, testSK).
const plantedPhone = "8613912345678"

// Every text the client produces about a response or itself is checked for
// the planted SK and the planted phone number.
func TestNoTextShowsTheSecretOrAPhoneNumber(t *testing.T) {
	row := `{"callId":"1-1","callerNo":"` + plantedPhone + `","calleeNo":"4001","callEnd":1735689660000}`
	page := `{"resultCode":"0100000","resultDesc":{"data":[` + row + `],"count":1}}`
	tests := []struct {
		name string
		text func(t *testing.T, c *Client) string
	}{
		{"a client formatted with %v, %+v, %#v, %s, %q, %x and %d", func(t *testing.T, c *Client) string {
			return fmt.Sprintf("%v %+v %#v %s %q %x %d", c, c, c, c, c, c, c)
		}},
		{"a client value formatted with %v, %+v, %#v and %d", func(t *testing.T, c *Client) string {
			return fmt.Sprintf("%v %+v %#v %d", *c, *c, *c, *c)
		}},
		{"a struct holding a client value, formatted with %+v and %#v", func(t *testing.T, c *Client) string {
			holder := struct{ C Client }{*c}
			return fmt.Sprintf("%+v %#v", holder, holder)
		}},
		{"the signer formatted with %v, %+v, %#v and %d", func(t *testing.T, c *Client) string {
			return fmt.Sprintf("%v %+v %#v %d", c.sign, c.sign, c.sign, c.sign)
		}},
		{"a config formatted with %d and %x", func(t *testing.T, c *Client) string {
			cfg := Config{URL: "https://ccms.example:28443", AK: "ak", SK: testSK}
			verbs := "%d %x %#v" // not a constant: vet rightly says %d does not suit a Config
			//lint:ignore SA5009 the test checks that no verb, fitting or not, prints the secret
			return fmt.Sprintf(verbs, cfg, cfg, cfg)
		}},
		{"a client logged through slog's text and JSON handlers", func(t *testing.T, c *Client) string {
			var b bytes.Buffer
			slog.New(slog.NewTextHandler(&b, nil)).Info("x", "client", c, "value", *c)
			slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "client", c, "value", *c)
			return b.String()
		}},
		{"a 200 body that is not JSON", func(t *testing.T, c *Client) string {
			return decodeErr(t, `<html>call `+plantedPhone+` with key `+testSK+`</html>`)
		}},
		{"a truncated 200 body", func(t *testing.T, c *Client) string {
			return decodeErr(t, page[:len(page)-20])
		}},
		{"a 200 body whose resultDesc is a string", func(t *testing.T, c *Client) string {
			return decodeErr(t, `{"resultCode":"0100000","resultDesc":"`+plantedPhone+`"}`)
		}},
		{"a 200 body whose count is not a number", func(t *testing.T, c *Client) string {
			return decodeErr(t, `{"resultCode":"0100000","resultDesc":{"data":[`+row+`],"count":"`+plantedPhone+`x"}}`)
		}},
		{"a failure whose resultDesc echoes a phone number", func(t *testing.T, c *Client) string {
			_, err := decodeResponse(200, []byte(`{"resultCode":"0101002","resultDesc":"number +86 139-1234-5678 / `+plantedPhone+` does not exist"}`), time.UTC)
			return err.Error()
		}},
		{"a failure whose resultDesc is an object of rows", func(t *testing.T, c *Client) string {
			_, err := decodeResponse(200, []byte(`{"resultCode":"0101003","resultDesc":{"data":[`+row+`]}}`), time.UTC)
			return err.Error()
		}},
		{"the reasons of bad rows holding the phone number", func(t *testing.T, c *Client) string {
			p, err := decodeResponse(200, []byte(`{"resultCode":"0100000","resultDesc":{"data":[`+
				`{"callerNo":"`+plantedPhone+`"},"`+plantedPhone+`",{"callId":"`+plantedPhone+`","callerNo":"`+plantedPhone+`","callEnd":-1},`+
				`{"callId":"x","calleeNo":"`+plantedPhone+`","vdn":{"no":"`+plantedPhone+`"}}]}}`), time.UTC)
			if err != nil || len(p.Bad) != 4 {
				t.Fatalf("want four bad rows, got %+v, %v", p, err)
			}
			return fmt.Sprint(p.Bad[0].Reason, p.Bad[1].Reason, p.Bad[2].Reason, p.Bad[3].Reason)
		}},
		{"a 200 body over the size limit", func(t *testing.T, c *Client) string {
			big := page + strings.Repeat(" ", 2048)
			srv := startTLS(t, statusHandler(200, nil, big))
			cfg := testConfig(t, srv)
			cfg.MaxBodyBytes, cfg.MaxAttempts = 1024, 1
			c2, _ := newTestClient(t, cfg)
			_, err := c2.QueryCalls(t.Context(), testQuery)
			if err == nil {
				t.Fatal("want an error")
			}
			return err.Error() + fmt.Sprintf("%+v", err)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(Config{URL: "https://ccms.example:28443", AK: testAK, SK: testSK}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			text := tc.text(t, c)
			if text == "" {
				t.Fatal("no text to check")
			}
			noSecrets(t, text)
			if strings.Contains(text, plantedPhone) || strings.Contains(text, "139-1234-5678") {
				t.Errorf("%q shows the phone number", text)
			}
		})
	}
}

// decodeErr is the text of the error decoding a 200 body; it must be a
// *DecodeError without an excerpt.
func decodeErr(t *testing.T, body string) string {
	t.Helper()
	_, err := decodeResponse(200, []byte(body), time.UTC)
	de, ok := err.(*DecodeError)
	if !ok || de.Excerpt != "" || de.Length != len(body) {
		t.Fatalf("want a *DecodeError of %d bytes without an excerpt, got %#v", len(body), err)
	}
	return err.Error() + fmt.Sprintf("%+v %#v", err, err)
}

// A non-200 body is a gateway's page, not call data: it keeps its excerpt.
func TestAGatewayBodyKeepsItsExcerpt(t *testing.T) {
	srv := startTLS(t, statusHandler(502, nil, "<html>bad gateway at edge-7</html>"))
	cfg := testConfig(t, srv)
	cfg.MaxAttempts = 1
	c, _ := newTestClient(t, cfg)
	_, err := c.QueryCalls(t.Context(), testQuery)
	if err == nil || !strings.Contains(err.Error(), "<html>bad gateway at edge-7</html>") {
		t.Errorf("got %v, want the gateway's body in the error", err)
	}
}
