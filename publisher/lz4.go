package publisher

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
)

// kafka-go compresses lz4 record batches with pierrec/lz4's default frame
// settings: 4 MiB blocks. Every batch being compressed then holds a 4 MiB
// buffer from lz4's pools, whatever its size, and the pools kept 12-16 MiB
// of them alive in `callpub run` at 10,000 streams (a third of its heap),
// for batches of a few kilobytes. A batch is at most
// CALLPUB_KAFKA_MAX_MESSAGE_BYTES (1 MiB by default), so callpub writes 64
// KiB blocks instead, as the Java producer does (KafkaLZ4BlockOutputStream's
// default): the same frame format, which every consumer reads.
//
// kafka-go looks its codecs up in the package variable compress.Codecs, with
// no per-Writer setting, so the lz4 entry is replaced here, once, before
// main runs. Reading is left to kafka-go's own codec.
func init() {
	compress.Codecs[compress.Lz4] = &lz4Codec{Codec: compress.Codecs[compress.Lz4]}
}

// lz4BlockSize is the block size of the lz4 frames callpub writes.
const lz4BlockSize = lz4.Block64Kb

// lz4Codec is kafka-go's lz4 codec with 64 KiB blocks for writing.
type lz4Codec struct {
	compress.Codec // kafka-go's: Code, Name and NewReader
	writers        sync.Pool
}

// NewWriter returns a writer of lz4 frames of 64 KiB blocks; Close returns
// it to the pool, as kafka-go's codec does.
func (c *lz4Codec) NewWriter(w io.Writer) io.WriteCloser {
	z, _ := c.writers.Get().(*lz4.Writer)
	if z == nil {
		z = lz4.NewWriter(w)
		// A new writer accepts every option: the error is only for options
		// applied after writing began.
		_ = z.Apply(lz4.BlockSizeOption(lz4BlockSize))
	}
	z.Reset(w) // keeps the block size
	return &lz4Writer{Writer: z, pool: &c.writers}
}

type lz4Writer struct {
	*lz4.Writer
	pool *sync.Pool
}

func (w *lz4Writer) Close() error {
	z := w.Writer
	if z == nil {
		return nil
	}
	w.Writer = nil
	err := z.Close()
	z.Reset(nil)
	w.pool.Put(z)
	return err
}
