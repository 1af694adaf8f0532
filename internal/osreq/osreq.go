// Package osreq is the one small helper for hand-built OpenSearch requests
// (calls whose typed opensearch-go API is awkward or allocates too much):
// send a request through the client's transport, get the answer's body on
// 2xx, or an *Error that keeps the HTTP status and OpenSearch's error type.
//
// Every package that talks to OpenSearch outside the bulk hot path (indexer
// administration, checkpoint history, parity, probe, cutover, tests) uses
// it, so error answers are read, cut and classified in one way.
package osreq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// MaxErrorBody bounds how much of an error answer goes into an Error.
const MaxErrorBody = 2000

// Error is a non-2xx answer to a request.
type Error struct {
	Status int    // HTTP status
	Type   string // error.type, when the answer has one
	Reason string // error.reason, when the answer has one
	Body   string // the answer, cut to MaxErrorBody
}

// Error describes the answer.
func (e *Error) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("HTTP %d: %s: %s", e.Status, e.Type, e.Reason)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// Do sends method path (with body as JSON, when not nil) through client's
// transport and returns the answer's body when the status is 2xx, or an
// error wrapping an *Error. Transport errors are returned wrapped, naming
// the method and path.
func Do(ctx context.Context, client *opensearchapi.Client, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Client.Stream(req)
	if err != nil {
		if res != nil {
			res.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: %w", method, path, ParseError(res.StatusCode, data))
	}
	return data, nil
}

// JSON is Do with body marshalled from v (nil: no body) and a 2xx answer
// decoded into out (nil: ignored).
func JSON(ctx context.Context, client *opensearchapi.Client, method, path string, v, out any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
	}
	data, err := Do(ctx, client, method, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// ParseError reads OpenSearch's error answer
// {"error":{"type":…,"reason":…},"status":…}; other bodies are kept as text.
func ParseError(status int, data []byte) *Error {
	e := &Error{Status: status, Body: Truncate(data, MaxErrorBody)}
	var ans struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &ans) == nil && len(ans.Error) > 0 {
		var detail struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(ans.Error, &detail) == nil {
			e.Type, e.Reason = detail.Type, detail.Reason
		} else {
			var s string
			if json.Unmarshal(ans.Error, &s) == nil {
				e.Reason = s
			}
		}
	}
	return e
}

// Info extracts the HTTP status and OpenSearch error type from an error
// returned by the typed API or by Do; zero values when unknown.
func Info(err error) (status int, typ string) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status, ae.Type
	}
	var se *opensearch.StructError
	if errors.As(err, &se) {
		return se.Status, se.Err.Type
	}
	var ste *opensearch.StringError
	if errors.As(err, &ste) {
		return ste.Status, ""
	}
	return 0, ""
}

// IsNotFound reports whether err is a 404 answer: a missing index
// (index_not_found_exception) or a missing document.
func IsNotFound(err error) bool {
	status, typ := Info(err)
	return status == http.StatusNotFound || typ == "index_not_found_exception"
}

// ShardsError reports failed shards or a timeout in a search-like answer:
// an answer built from part of the data must not be trusted.
func ShardsError(shards opensearchapi.ResponseShards, timedOut bool) error {
	if timedOut {
		return errors.New("search timed out: the answer may be incomplete")
	}
	if shards.Failed > 0 {
		reason := ""
		if len(shards.Failures) > 0 {
			f := shards.Failures[0]
			reason = fmt.Sprintf(": %s: %s", f.Reason.Type, f.Reason.Reason)
		}
		return fmt.Errorf("%d of %d shards failed%s", shards.Failed, shards.Total, reason)
	}
	return nil
}

// Truncate returns b as a string of at most n bytes, marking a cut with
// "..." and never splitting a UTF-8 sequence.
func Truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	cut := n
	for cut > 0 && b[cut]&0xc0 == 0x80 {
		cut--
	}
	return string(b[:cut]) + "..."
}
