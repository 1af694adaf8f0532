package probe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Query is one search body of a query file.
type Query struct {
	// Line is the body's line number in the file (1-based).
	Line int
	// Body is the search body, compacted onto one line.
	Body []byte
}

// ReadQueries reads a query file: one JSON search body (an object) per
// line, as sent to _search. Blank lines are skipped. Any other line that is
// not a JSON object is an error naming its line; a file without a body is
// an error.
func ReadQueries(r io.Reader) ([]Query, error) {
	br := bufio.NewReader(r)
	var out []Query
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read queries: line %d: %w", line, err)
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 {
			if trimmed[0] != '{' || !json.Valid(trimmed) {
				return nil, fmt.Errorf("read queries: line %d is not a JSON object (one search body per line): %.80s", line, trimmed)
			}
			var body bytes.Buffer
			if cerr := json.Compact(&body, trimmed); cerr != nil {
				return nil, fmt.Errorf("read queries: line %d: %w", line, cerr)
			}
			out = append(out, Query{Line: line, Body: body.Bytes()})
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("read queries: the file holds no search body")
	}
	return out, nil
}
