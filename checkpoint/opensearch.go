package checkpoint

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

// maxErrorBody bounds how much of an error answer goes into an error.
const maxErrorBody = 2000

// apiError is a non-2xx answer to a hand-built request.
type apiError struct {
	status int
	typ    string // error.type, when the answer has one
	reason string // error.reason, when the answer has one
	body   string // the answer, cut to maxErrorBody
}

// Error describes the answer.
func (e *apiError) Error() string {
	if e.typ != "" {
		return fmt.Sprintf("HTTP %d: %s: %s", e.status, e.typ, e.reason)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// perform sends a hand-built request through the client's transport (for
// calls whose typed API is awkward) and returns the answer's body when the
// status is 2xx, or an *apiError.
func perform(ctx context.Context, client *opensearchapi.Client, method, path string, body []byte) ([]byte, error) {
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
		return nil, fmt.Errorf("%s %s: %w", method, path, parseAPIError(res.StatusCode, data))
	}
	return data, nil
}

// parseAPIError reads OpenSearch's error answer
// {"error":{"type":…,"reason":…},"status":…}; other bodies are kept as text.
func parseAPIError(status int, data []byte) *apiError {
	e := &apiError{status: status, body: string(data)}
	if len(e.body) > maxErrorBody {
		e.body = e.body[:maxErrorBody] + "..."
	}
	var ans struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &ans) == nil && len(ans.Error) > 0 {
		var detail struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(ans.Error, &detail) == nil {
			e.typ, e.reason = detail.Type, detail.Reason
		}
	}
	return e
}

// errorInfo extracts the HTTP status and OpenSearch error type from an error
// returned by the typed API or by perform; zero values when unknown.
func errorInfo(err error) (status int, typ string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.typ
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

// isNotFound reports whether err is a 404 answer: a missing index
// (index_not_found_exception) or a missing document.
func isNotFound(err error) bool {
	status, typ := errorInfo(err)
	return status == http.StatusNotFound || typ == "index_not_found_exception"
}

// shardsError reports failed shards or a timeout in a search-like answer:
// an answer built from part of the data must not be trusted.
func shardsError(shards opensearchapi.ResponseShards, timedOut bool) error {
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
