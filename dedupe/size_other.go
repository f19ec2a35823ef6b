//go:build !linux

package dedupe

import "errors"

func volumeFree(string) (int64, error) { return 0, errors.ErrUnsupported }
