package event

import (
	"fmt"
	"strings"
)

// SourceKind says where in a Kafka record a field is read from.
type SourceKind uint8

// The places a field can come from.
const (
	// FromNone means the field is not read; only valid for the op (every
	// record with a value is then an upsert) and the routing.
	FromNone SourceKind = iota
	// FromJSON reads the value at a JSON pointer inside the record value.
	FromJSON
	// FromKey reads the record key.
	FromKey
	// FromHeader reads the named record header.
	FromHeader
	// FromOffset uses the record offset (only for the version).
	FromOffset
	// FromTimestamp uses the record timestamp in milliseconds (only for the
	// version).
	FromTimestamp
	// FromValue uses the whole record value (only for the document).
	FromValue
)

// Source locates one field of an event in a Kafka record. Its textual form,
// accepted by ParseSource and printed by String, is one of:
//
//	json:/pointer   a JSON pointer (RFC 6901) into the record value, e.g. json:/payload/id
//	key             the record key
//	header:NAME     the record header NAME
//	offset          the record offset (version only)
//	timestamp       the record timestamp in ms (version only)
//	value           the whole record value (document only)
//	none            not read (op and routing only)
type Source struct {
	Kind    SourceKind
	Pointer []string // unescaped reference tokens, for FromJSON
	Header  string   // header name, for FromHeader
	text    string
}

// String returns the textual form of s.
func (s Source) String() string {
	if s.text != "" {
		return s.text
	}
	switch s.Kind {
	case FromNone:
		return "none"
	case FromKey:
		return "key"
	case FromHeader:
		return "header:" + s.Header
	case FromOffset:
		return "offset"
	case FromTimestamp:
		return "timestamp"
	case FromValue:
		return "value"
	}
	var b strings.Builder
	b.WriteString("json:")
	for _, t := range s.Pointer {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	if len(s.Pointer) == 0 {
		b.WriteString("/")
	}
	return b.String()
}

// JSON returns a source reading the JSON pointer ptr (e.g. "/doc").
func JSON(ptr string) Source {
	s, err := ParseSource("json:" + ptr)
	if err != nil {
		panic(err)
	}
	return s
}

// ParseSource parses the textual form of a Source (see Source). A bare JSON
// pointer starting with "/" is accepted as shorthand for json:/pointer.
func ParseSource(text string) (Source, error) {
	switch {
	case text == "none":
		return Source{Kind: FromNone, text: text}, nil
	case text == "key":
		return Source{Kind: FromKey, text: text}, nil
	case text == "offset":
		return Source{Kind: FromOffset, text: text}, nil
	case text == "timestamp":
		return Source{Kind: FromTimestamp, text: text}, nil
	case text == "value":
		return Source{Kind: FromValue, text: text}, nil
	case strings.HasPrefix(text, "header:"):
		name := strings.TrimPrefix(text, "header:")
		if name == "" {
			return Source{}, fmt.Errorf("source %q: header name is empty", text)
		}
		return Source{Kind: FromHeader, Header: name, text: text}, nil
	case strings.HasPrefix(text, "json:") || strings.HasPrefix(text, "/"):
		ptr := strings.TrimPrefix(text, "json:")
		if ptr == "" || ptr[0] != '/' {
			return Source{}, fmt.Errorf("source %q: a JSON pointer must start with '/'", text)
		}
		if ptr == "/" {
			return Source{Kind: FromJSON, text: text}, nil
		}
		toks := strings.Split(ptr[1:], "/")
		for i, t := range toks {
			if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(t, "~0", ""), "~1", ""), "~") {
				return Source{}, fmt.Errorf("source %q: invalid escape in JSON pointer token %q (use ~0 for ~ and ~1 for /)", text, t)
			}
			toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
		return Source{Kind: FromJSON, Pointer: toks, text: text}, nil
	}
	return Source{}, fmt.Errorf("source %q: want json:/pointer, key, header:NAME, offset, timestamp, value or none", text)
}
