package ccms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callpub/callpub/schemas"
)

// Window is one stream's HALF-OPEN span of filter time [Start, End). The
// API's inclusive endDate is End − 1ms (End is first rounded up to a whole
// millisecond, Start down).
type Window struct {
	schemas.Stream
	Start, End time.Time
}

func (w Window) String() string {
	return fmt.Sprintf("%s [%s, %s)", w.Key(),
		w.Start.UTC().Format(time.RFC3339Nano), w.End.UTC().Format(time.RFC3339Nano))
}

// ReadOptions tune ReadWindow. Zero values mean the defaults.
type ReadOptions struct {
	PageSize int           // rows per page, 1..100; default 100
	MaxPages int           // split a window that needs more pages than this; default 20
	MinSpan  time.Duration // never split below this span; default 1s
}

// ReadStats count what one ReadWindow did.
type ReadStats struct {
	Requests int // HTTP attempts, retries included
	Pages    int // pages decoded
	Splits   int // windows split in halves
}

// ReadWindow reads every call of w, page by page. It checks that the pages
// agree: no page longer than the page size, no page at offset > 0 repeating
// an earlier page (a server that ignores offset), no call id on two pages
// (rows shifted), a count that does not change, and rows received equal to
// count. When they disagree, or the window needs more than MaxPages pages, it
// splits the window in halves and reads each, down to MinSpan; below that it
// returns an error wrapping ErrInconsistent with the window and the reason.
// Calls are deduplicated by callId (the last row read wins) and returned in
// the order first read. A nil error means every call in the window was read.
func (c *Client) ReadWindow(ctx context.Context, w Window, o ReadOptions) ([]Call, ReadStats, error) {
	o.PageSize = cmp.Or(o.PageSize, 100)
	o.MaxPages = cmp.Or(o.MaxPages, 20)
	o.MinSpan = cmp.Or(o.MinSpan, time.Second)
	var st ReadStats
	switch {
	case o.PageSize < 1 || o.PageSize > 100:
		return nil, st, fmt.Errorf("read window %v: %w", w, &ValidationError{Field: "limit", Reason: fmt.Sprintf("page size must be 1..100, got %d", o.PageSize)})
	case o.MaxPages < 1:
		return nil, st, fmt.Errorf("read window %v: max pages must be >= 1, got %d", w, o.MaxPages)
	case o.MinSpan < time.Millisecond:
		return nil, st, fmt.Errorf("read window %v: min span must be >= 1ms, got %v", w, o.MinSpan)
	}
	w.Start = w.Start.Truncate(time.Millisecond)
	if e := w.End.Truncate(time.Millisecond); e.Before(w.End) {
		w.End = e.Add(time.Millisecond)
	}
	if !w.End.After(w.Start) {
		return nil, st, fmt.Errorf("read window %v: %w", w, &ValidationError{Field: "endDate", Reason: "window is empty (End must be after Start)"})
	}
	r := reader{c: c, o: o, st: &st, byID: map[string]int{}}
	if err := r.read(ctx, w); err != nil {
		return nil, st, err
	}
	return r.calls, st, nil
}

// reader accumulates one ReadWindow.
type reader struct {
	c     *Client
	o     ReadOptions
	st    *ReadStats
	calls []Call
	byID  map[string]int // callId -> index in calls
}

// read reads w, splitting it when its pages disagree.
func (r *reader) read(ctx context.Context, w Window) error {
	calls, reason, err := r.pages(ctx, w)
	if err != nil {
		return err
	}
	if reason == "" {
		r.keep(calls)
		return nil
	}
	span := w.End.Sub(w.Start)
	mid := w.Start.Add(span / 2).Truncate(time.Millisecond)
	if span < 2*r.o.MinSpan || !mid.After(w.Start) {
		return fmt.Errorf("read window %v: %s (cannot split below %v): %w", w, reason, r.o.MinSpan, ErrInconsistent)
	}
	r.st.Splits++
	r.c.log.Debug("ccms: splitting window", "window", w.String(), "reason", reason)
	lo, hi := w, w
	lo.End, hi.Start = mid, mid
	if err := r.read(ctx, lo); err != nil {
		return err
	}
	return r.read(ctx, hi)
}

func (r *reader) keep(calls []Call) {
	for _, c := range calls {
		if i, ok := r.byID[c.CallID]; ok {
			r.calls[i] = c
			continue
		}
		r.byID[c.CallID] = len(r.calls)
		r.calls = append(r.calls, c)
	}
}

// pages reads w page by page. A non-empty reason means the pages disagree
// (or the window needs too many pages) and w should be split; the error is
// for failures of a single page.
func (r *reader) pages(ctx context.Context, w Window) (calls []Call, reason string, err error) {
	q := Query{Stream: w.Stream, Begin: w.Start,
		End: w.End.Add(-time.Millisecond), Limit: r.o.PageSize}
	canSplit := w.End.Sub(w.Start) >= 2*r.o.MinSpan
	var (
		count    = -1
		rows     int
		pageIDs  [][]string         // ids of each page, to spot a repeated page
		seenPage = map[string]int{} // callId -> offset of the page it was on
	)
	for n := 0; ; n++ {
		// At MinSpan a window may page on past MaxPages, but not forever.
		if n >= r.o.MaxPages && canSplit || n >= 10*r.o.MaxPages {
			return nil, fmt.Sprintf("more than %d pages", n), nil
		}
		q.Offset = n * r.o.PageSize
		page, attempts, err := r.c.queryCalls(ctx, q)
		r.st.Requests += attempts
		if err != nil {
			if errors.Is(err, ErrBodyTooLarge) && canSplit {
				return nil, "response body over the size limit", nil
			}
			return nil, "", fmt.Errorf("read window %v: %w", w, err)
		}
		r.st.Pages++
		got := len(page.Calls)
		switch {
		case page.HasCount && count >= 0 && page.Count != count:
			return nil, fmt.Sprintf("count changed from %d to %d at offset %d", count, page.Count, q.Offset), nil
		case page.HasCount:
			count = page.Count
		}
		if got > r.o.PageSize {
			// A server that ignores limit may return the whole window at once.
			if n == 0 && page.HasCount && got == page.Count && distinct(page.Calls) == got {
				return page.Calls, "", nil
			}
			return nil, fmt.Sprintf("page at offset %d has %d rows, more than the limit %d", q.Offset, got, r.o.PageSize), nil
		}
		ids := make([]string, got)
		for i, c := range page.Calls {
			ids[i] = c.CallID
		}
		if got > 0 {
			for i, prev := range pageIDs {
				if slices.Equal(prev, ids) {
					return nil, fmt.Sprintf("page at offset %d repeats the page at offset %d (offset ignored?)", q.Offset, i*r.o.PageSize), nil
				}
			}
			for _, id := range ids {
				if off, ok := seenPage[id]; ok && off != q.Offset {
					return nil, fmt.Sprintf("call id %q on the pages at offsets %d and %d (rows shifted)", id, off, q.Offset), nil
				}
			}
			for _, id := range ids {
				seenPage[id] = q.Offset
			}
		}
		pageIDs = append(pageIDs, ids)
		calls = append(calls, page.Calls...)
		rows += got
		if count >= 0 && rows > count {
			return nil, fmt.Sprintf("received %d rows, count says %d", rows, count), nil
		}
		if got < r.o.PageSize || count >= 0 && rows == count {
			if count >= 0 && rows != count {
				return nil, fmt.Sprintf("received %d rows, count says %d", rows, count), nil
			}
			return calls, "", nil
		}
		if n == 0 && count > r.o.PageSize*r.o.MaxPages && canSplit {
			return nil, fmt.Sprintf("count %d needs more than %d pages", count, r.o.MaxPages), nil
		}
	}
}

func distinct(calls []Call) int {
	seen := make(map[string]struct{}, len(calls))
	for _, c := range calls {
		seen[c.CallID] = struct{}{}
	}
	return len(seen)
}
