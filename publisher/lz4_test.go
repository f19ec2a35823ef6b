package publisher

import (
	"bytes"
	"io"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
)

func TestLz4BatchesAreFramesOf64KiBBlocksThatReadBack(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"an empty batch reads back empty", 0},
		{"a batch of a few events fits one block", 3_000},
		{"a batch of a megabyte spans sixteen blocks", 1 << 20},
	}
	codec := compress.Lz4.Codec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Repeat([]byte(`{"id":"0190","type":"call.completed.v1","data":{"callId":"7"}}`), tt.size/61+1)[:tt.size]
			for range 2 { // the second round uses the pooled writer
				var frame bytes.Buffer
				w := codec.NewWriter(&frame)
				if _, err := w.Write(in); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				// Frame descriptor: magic (4 bytes), FLG, BD; BD's bits 4-6
				// are the block size: 4 is 64 KiB, 7 is 4 MiB.
				if got := frame.Bytes()[5] >> 4 & 7; got != 4 {
					t.Fatalf("block size index %d, want 4 (64 KiB)", got)
				}
				out, err := io.ReadAll(lz4.NewReader(bytes.NewReader(frame.Bytes())))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("read back %d bytes, want the %d written", len(out), len(in))
				}
			}
		})
	}
}
