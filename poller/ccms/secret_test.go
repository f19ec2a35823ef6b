package ccms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretIsRedactedEverywhereItCanBePrinted(t *testing.T) {
	const sk = "very-secret-sk-value"
	cfg := Config{URL: "https://10.22.26.181:28080", AK: "ak", SK: sk}

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("config", "cfg", cfg, "sk", cfg.SK)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("config", "cfg", cfg, "sk", cfg.SK)
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":           fmt.Sprintf("%v", cfg),
		"%+v":          fmt.Sprintf("%+v", cfg),
		"%#v":          fmt.Sprintf("%#v", cfg),
		"%s secret":    fmt.Sprintf("%s", cfg.SK),
		"%q secret":    fmt.Sprintf("%q", cfg.SK),
		"%#v secret":   fmt.Sprintf("%#v", cfg.SK),
		"%x secret":    fmt.Sprintf("%x", cfg.SK),
		"slog JSON":    jsonLog.String(),
		"slog text":    textLog.String(),
		"json.Marshal": string(asJSON),
	}
	for name, out := range outputs {
		if strings.Contains(out, sk) || strings.Contains(out, fmt.Sprintf("%x", sk)) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "redacted") && !strings.HasPrefix(name, "%x") {
			t.Errorf("%s does not say [redacted]: %s", name, out)
		}
	}
	if got := cfg.SK.Reveal(); got != sk {
		t.Errorf("Reveal() = %q, want the value", got)
	}
}
