package indexer

import (
	"bytes"
	"fmt"

	"github.com/reindexer/reindexer/internal/jsonscan"
)

// bulkFilterPath trims the bulk response to what classification needs,
// which makes it several times smaller and faster to parse.
const bulkFilterPath = "items.*.status,items.*.result,items.*.error.type,items.*.error.reason,items.*.error.caused_by.type,items.*.error.caused_by.reason"

// itemResp is one parsed item of a bulk response. The byte slices alias the
// response body.
type itemResp struct {
	status       int
	result       []byte
	errType      []byte
	errReason    []byte
	causeType    []byte
	causeReason  []byte
	hasErrorBody bool
}

// parseBulkResponse calls fn for each item of a bulk response body in order
// and returns the number of items. The *itemResp passed to fn is reused for
// the next item.
func parseBulkResponse(body []byte, fn func(i int, it *itemResp)) (int, error) {
	p := respParser{body: body, fn: fn}
	_, err := jsonscan.Fields(body, jsonscan.SkipSpace(body, 0), p.top)
	if err == nil {
		err = p.err
	}
	if err != nil {
		return p.n, fmt.Errorf("parse bulk response: %w", err)
	}
	return p.n, nil
}

// respParser holds the state of one parse so the callbacks below are method
// values on one heap object rather than closures allocated per item.
type respParser struct {
	body []byte
	fn   func(int, *itemResp)
	it   itemResp
	n    int
	err  error
}

func (p *respParser) top(f jsonscan.Field) bool {
	if !jsonscan.KeyEquals(f.Key, "items") {
		return true
	}
	if jsonscan.KindAt(p.body, f.ValueStart) != jsonscan.Array {
		p.err = fmt.Errorf("items is not an array")
		return false
	}
	p.err = eachElement(p.body, f.ValueStart, p.element)
	return false
}

// element parses {"<action>":{...}} and returns the index past it.
func (p *respParser) element(start int) (int, error) {
	p.it = itemResp{}
	end, err := jsonscan.Fields(p.body, start, p.action)
	if err != nil {
		return end, err
	}
	if p.err != nil {
		return end, p.err
	}
	p.fn(p.n, &p.it)
	p.n++
	return end, nil
}

func (p *respParser) action(a jsonscan.Field) bool {
	if jsonscan.KindAt(p.body, a.ValueStart) != jsonscan.Object {
		return true
	}
	_, p.err = jsonscan.Fields(p.body, a.ValueStart, p.field)
	return true
}

func (p *respParser) field(g jsonscan.Field) bool {
	parseItemField(p.body, g, &p.it)
	return true
}

func parseItemField(body []byte, g jsonscan.Field, it *itemResp) {
	switch {
	case jsonscan.KeyEquals(g.Key, "status"):
		if v, err := jsonscan.ParseInt(body[g.ValueStart:g.ValueEnd]); err == nil {
			it.status = int(v)
		}
	case jsonscan.KeyEquals(g.Key, "result"):
		it.result = stringBody(body, g)
	case jsonscan.KeyEquals(g.Key, "error"):
		it.hasErrorBody = true
		if jsonscan.KindAt(body, g.ValueStart) == jsonscan.String { // some proxies flatten errors
			it.errReason = stringBody(body, g)
			return
		}
		_, _ = jsonscan.Fields(body, g.ValueStart, func(e jsonscan.Field) bool {
			switch {
			case jsonscan.KeyEquals(e.Key, "type"):
				it.errType = stringBody(body, e)
			case jsonscan.KeyEquals(e.Key, "reason"):
				it.errReason = stringBody(body, e)
			case jsonscan.KeyEquals(e.Key, "caused_by") && jsonscan.KindAt(body, e.ValueStart) == jsonscan.Object:
				_, _ = jsonscan.Fields(body, e.ValueStart, func(c jsonscan.Field) bool {
					switch {
					case jsonscan.KeyEquals(c.Key, "type"):
						it.causeType = stringBody(body, c)
					case jsonscan.KeyEquals(c.Key, "reason"):
						it.causeReason = stringBody(body, c)
					}
					return true
				})
			}
			return true
		})
	}
}

func stringBody(body []byte, f jsonscan.Field) []byte {
	if jsonscan.KindAt(body, f.ValueStart) != jsonscan.String {
		return body[f.ValueStart:f.ValueEnd]
	}
	return body[f.ValueStart+1 : f.ValueEnd-1]
}

func eachElement(b []byte, i int, fn func(start int) (int, error)) error {
	i = jsonscan.SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		end, err := fn(i)
		if err != nil {
			return err
		}
		i = jsonscan.SkipSpace(b, end)
		if i >= len(b) {
			return fmt.Errorf("unexpected end of items array")
		}
		switch b[i] {
		case ',':
			i = jsonscan.SkipSpace(b, i+1)
		case ']':
			return nil
		default:
			return fmt.Errorf("expected ',' or ']' in items array at byte %d", i)
		}
	}
}

// conflictVersions extracts C and P from a version conflict reason such as
// "[id]: version conflict, current version [7] is higher or equal to the one
// provided [5]".
func conflictVersions(reason []byte) (current, provided int64, ok bool) {
	c, ok1 := bracketNumberAfter(reason, []byte("current version ["))
	p, ok2 := bracketNumberAfter(reason, []byte("provided ["))
	return c, p, ok1 && ok2
}

func bracketNumberAfter(s, marker []byte) (int64, bool) {
	i := bytes.LastIndex(s, marker)
	if i < 0 {
		return 0, false
	}
	s = s[i+len(marker):]
	j := bytes.IndexByte(s, ']')
	if j < 0 {
		return 0, false
	}
	v, err := jsonscan.ParseInt(s[:j])
	return v, err == nil
}

// unescape turns a JSON string body into a Go string for error messages.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	u, err := jsonscan.AppendUnescaped(nil, b)
	if err != nil {
		return string(b)
	}
	return string(u)
}
