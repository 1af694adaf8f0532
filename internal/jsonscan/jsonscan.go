// Package jsonscan is a small, allocation-free JSON scanner for the hot path:
// it finds values inside a JSON text by position, validates what it walks
// over, and never decodes into Go values.
//
// The reindexer passes documents through to OpenSearch untouched, so all it
// needs from an event is where its id, version, op and document are. A full
// decode and re-encode would cost an allocation per field and change the
// bytes. Every function here works on byte offsets into the caller's slice.
//
// The scanner is strict: it rejects what encoding/json rejects (trailing
// commas, single quotes, raw control characters in strings, leading zeros,
// invalid escapes), so a value it accepts is valid JSON. It does not check
// that strings are valid UTF-8 (OpenSearch replaces invalid sequences with
// U+FFFD); ValidText does, for the strings that must stay distinct: ids and
// routing values.
package jsonscan

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxDepth bounds nesting so hostile input cannot exhaust the stack.
// OpenSearch 3.x itself limits documents to 1000 levels.
const MaxDepth = 1000

// Kind is the type of a JSON value, known from its first byte.
type Kind uint8

// The kinds of JSON value.
const (
	Invalid Kind = iota
	Object
	Array
	String
	Number
	True
	False
	Null
)

// String returns the JSON name of the kind.
func (k Kind) String() string {
	switch k {
	case Object:
		return "object"
	case Array:
		return "array"
	case String:
		return "string"
	case Number:
		return "number"
	case True, False:
		return "boolean"
	case Null:
		return "null"
	}
	return "invalid"
}

// KindAt reports the kind of the value starting at b[i].
func KindAt(b []byte, i int) Kind {
	if i >= len(b) {
		return Invalid
	}
	switch c := b[i]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == '-' || (c >= '0' && c <= '9'):
		return Number
	case c == 't':
		return True
	case c == 'f':
		return False
	case c == 'n':
		return Null
	}
	return Invalid
}

// SyntaxError describes malformed JSON and where it was found.
type SyntaxError struct {
	Offset int    // byte offset of the problem
	Msg    string // what is wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

func syntaxErr(off int, msg string) error { return &SyntaxError{Offset: off, Msg: msg} }

// SkipSpace returns the index of the first non-whitespace byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Value validates the JSON value starting at b[i] (no leading whitespace)
// and returns the index just past it. multiline reports whether the value
// contains a raw newline or carriage return between tokens, which would
// break an NDJSON line (see Compact).
func Value(b []byte, i int) (end int, multiline bool, err error) {
	s := scanner{b: b}
	end, err = s.value(i, 0)
	return end, s.multiline, err
}

type scanner struct {
	b         []byte
	multiline bool
}

func (s *scanner) space(i int) int {
	b := s.b
	for i < len(b) {
		switch b[i] {
		case ' ', '\t':
			i++
		case '\n', '\r':
			s.multiline = true
			i++
		default:
			return i
		}
	}
	return i
}

func (s *scanner) value(i, depth int) (int, error) {
	b := s.b
	if i >= len(b) {
		return i, syntaxErr(i, "unexpected end of input")
	}
	switch c := b[i]; {
	case c == '"':
		return String1(b, i)
	case c == '{':
		return s.object(i, depth+1)
	case c == '[':
		return s.array(i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return number(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	default:
		return i, syntaxErr(i, fmt.Sprintf("unexpected character %q", c))
	}
}

func (s *scanner) object(i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	b := s.b
	i = s.space(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(i, "expected object key")
		}
		var err error
		if i, err = String1(b, i); err != nil {
			return i, err
		}
		i = s.space(i)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(i, "expected ':' after object key")
		}
		i = s.space(i + 1)
		if i, err = s.value(i, depth); err != nil {
			return i, err
		}
		i = s.space(i)
		if i >= len(b) {
			return i, syntaxErr(i, "unexpected end of input in object")
		}
		switch b[i] {
		case ',':
			i = s.space(i + 1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected ',' or '}' in object")
		}
	}
}

func (s *scanner) array(i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	b := s.b
	i = s.space(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(i, depth); err != nil {
			return i, err
		}
		i = s.space(i)
		if i >= len(b) {
			return i, syntaxErr(i, "unexpected end of input in array")
		}
		switch b[i] {
		case ',':
			i = s.space(i + 1)
		case ']':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected ',' or ']' in array")
		}
	}
}

// String1 validates the string literal starting at b[i] (which must be '"')
// and returns the index just past its closing quote.
func String1(b []byte, i int) (int, error) {
	start := i
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, syntaxErr(i, "unterminated escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return i, syntaxErr(i, "invalid \\u escape")
				}
				i += 6
			default:
				return i, syntaxErr(i, fmt.Sprintf("invalid escape \\%c", b[i+1]))
			}
		case c < 0x20:
			return i, syntaxErr(i, "control character in string")
		default:
			i++
		}
	}
	return start, syntaxErr(start, "unterminated string")
}

func isHex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func number(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, syntaxErr(start, "invalid number")
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, syntaxErr(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, syntaxErr(start, "invalid number: no digits after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, syntaxErr(start, "invalid number: no digits in exponent")
		}
	}
	return i, nil
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, syntaxErr(i, "invalid literal")
	}
	return i + len(lit), nil
}

// Document validates that b is exactly one JSON value, optionally surrounded
// by whitespace, and returns the span of that value.
func Document(b []byte) (start, end int, multiline bool, err error) {
	start = SkipSpace(b, 0)
	end, multiline, err = Value(b, start)
	if err != nil {
		return start, end, multiline, err
	}
	if rest := SkipSpace(b, end); rest != len(b) {
		return start, end, multiline, syntaxErr(rest, "trailing data after JSON value")
	}
	return start, end, multiline, nil
}

// Field is one member of an object, as offsets into the scanned text.
type Field struct {
	Key        []byte // the key's raw literal content, without quotes, still escaped
	ValueStart int    // index of the value's first byte
	ValueEnd   int    // index just past the value
	Multiline  bool   // the value contains raw newlines between tokens
}

// Fields walks the object starting at b[i] and calls fn for each member in
// order; fn returns false to stop early (the rest is then not validated).
// It returns the index just past the object.
func Fields(b []byte, i int, fn func(f Field) bool) (int, error) {
	s := scanner{b: b}
	if i >= len(b) || b[i] != '{' {
		return i, syntaxErr(i, "expected an object")
	}
	i = s.space(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(i, "expected object key")
		}
		kend, err := String1(b, i)
		if err != nil {
			return i, err
		}
		key := b[i+1 : kend-1]
		i = s.space(kend)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(i, "expected ':' after object key")
		}
		i = s.space(i + 1)
		vstart := i
		s.multiline = false
		if i, err = s.value(i, 1); err != nil {
			return i, err
		}
		if !fn(Field{Key: key, ValueStart: vstart, ValueEnd: i, Multiline: s.multiline}) {
			return i, nil
		}
		i = s.space(i)
		if i >= len(b) {
			return i, syntaxErr(i, "unexpected end of input in object")
		}
		switch b[i] {
		case ',':
			i = s.space(i + 1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected ',' or '}' in object")
		}
	}
}

// KeyEquals reports whether the raw (possibly escaped) key equals name.
func KeyEquals(raw []byte, name string) bool {
	if len(raw) == len(name) && string(raw) == name {
		return true
	}
	if !hasEscape(raw) {
		return false
	}
	var buf [128]byte
	u, err := AppendUnescaped(buf[:0], raw)
	return err == nil && string(u) == name
}

func hasEscape(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' {
			return true
		}
	}
	return false
}

// Lookup finds the value at the JSON pointer path (already split into
// unescaped reference tokens) inside the value at b[i]. Array elements are
// addressed by decimal index. found is false when a step is missing; err is
// set only for malformed JSON along the way.
func Lookup(b []byte, i int, path []string) (start, end int, found bool, err error) {
	for _, tok := range path {
		switch KindAt(b, i) {
		case Object:
			hit := false
			_, err = Fields(b, i, func(f Field) bool {
				if KeyEquals(f.Key, tok) {
					start, end, hit = f.ValueStart, f.ValueEnd, true
					return false
				}
				return true
			})
			if err != nil {
				return 0, 0, false, err
			}
			if !hit {
				return 0, 0, false, nil
			}
			i = start
		case Array:
			idx, ok := arrayIndex(tok)
			if !ok {
				return 0, 0, false, nil
			}
			s, e, hit, aerr := element(b, i, idx)
			if aerr != nil || !hit {
				return 0, 0, false, aerr
			}
			start, end, i = s, e, s
		default:
			return 0, 0, false, nil
		}
	}
	if len(path) == 0 {
		end, _, err = Value(b, i)
		return i, end, err == nil, err
	}
	return start, end, true, nil
}

func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 9 || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func element(b []byte, i, want int) (start, end int, found bool, err error) {
	s := scanner{b: b}
	i = s.space(i + 1)
	if i < len(b) && b[i] == ']' {
		return 0, 0, false, nil
	}
	for n := 0; ; n++ {
		vs := i
		if i, err = s.value(i, 1); err != nil {
			return 0, 0, false, err
		}
		if n == want {
			return vs, i, true, nil
		}
		i = s.space(i)
		if i >= len(b) {
			return 0, 0, false, syntaxErr(i, "unexpected end of input in array")
		}
		switch b[i] {
		case ',':
			i = s.space(i + 1)
		case ']':
			return 0, 0, false, nil
		default:
			return 0, 0, false, syntaxErr(i, "expected ',' or ']' in array")
		}
	}
}

// ErrNotInteger is returned by ParseInt for numbers with a fraction or an
// exponent, or for text that is not a number.
var ErrNotInteger = errors.New("not an integer")

// ErrRange is returned by ParseInt for integers outside int64.
var ErrRange = errors.New("out of int64 range")

// ParseInt parses a JSON integer literal (optionally negative) with no
// fraction or exponent.
func ParseInt(lit []byte) (int64, error) {
	if len(lit) == 0 {
		return 0, ErrNotInteger
	}
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	if len(lit) == 0 || (len(lit) > 1 && lit[0] == '0') {
		return 0, ErrNotInteger
	}
	var n uint64
	for _, c := range lit {
		if c < '0' || c > '9' {
			return 0, ErrNotInteger
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, ErrRange
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, ErrRange
		}
		return -int64(n), nil
	}
	if n > math.MaxInt64 {
		return 0, ErrRange
	}
	return int64(n), nil
}

// AppendUnescaped appends the decoded form of a raw string literal's content
// (without quotes) to dst.
func AppendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return dst, syntaxErr(i, "unterminated escape")
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+6 > len(raw) || !isHex4(raw[i+2:i+6]) {
				return dst, syntaxErr(i, "invalid \\u escape")
			}
			r := rune(hex4(raw[i+2 : i+6]))
			i += 6
			if utf16Surrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' && isHex4(raw[i+2:i+6]) {
					r2 = rune(hex4(raw[i+2 : i+6]))
				}
				if r >= 0xD800 && r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, syntaxErr(i, "invalid escape")
		}
		i += 2
	}
	return dst, nil
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r < 0xE000 }

func hex4(h []byte) int {
	n := 0
	for _, c := range h {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		default:
			n |= int(c-'A') + 10
		}
	}
	return n
}

// UnescapedLen returns the number of bytes the raw string literal content
// decodes to, without allocating.
func UnescapedLen(raw []byte) (int, error) {
	if !hasEscape(raw) {
		return len(raw), nil
	}
	var buf [256]byte
	u, err := AppendUnescaped(buf[:0], raw)
	return len(u), err
}

// ValidText reports whether the raw content of a string literal (between
// the quotes, escapes not yet decoded) decodes to valid Unicode text: valid
// UTF-8 bytes, and \u escapes that form no lone UTF-16 surrogate. OpenSearch
// replaces what is not with U+FFFD, so two different strings that fail this
// check can become the same string there (e.g. "\ud800x" and "\udbffx").
// raw must have been validated by the scanner.
func ValidText(raw []byte) bool {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		case c != '\\':
			i++
		case i+1 < len(raw) && raw[i+1] == 'u':
			if i+6 > len(raw) || !isHex4(raw[i+2:i+6]) {
				return false
			}
			r := rune(hex4(raw[i+2 : i+6]))
			i += 6
			switch {
			case r >= 0xDC00 && r < 0xE000: // a low surrogate with no high one before it
				return false
			case r >= 0xD800 && r < 0xDC00: // a high surrogate must be followed by a low one
				if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' || !isHex4(raw[i+2:i+6]) {
					return false
				}
				if r2 := rune(hex4(raw[i+2 : i+6])); r2 < 0xDC00 || r2 >= 0xE000 {
					return false
				}
				i += 6
			}
		default:
			i += 2
		}
	}
	return true
}

// AppendEscaped appends s as the content of a JSON string literal (without
// quotes), escaping quotes, backslashes, control characters and invalid
// UTF-8 (replaced by U+FFFD: lossy, so callers that need distinct strings to
// stay distinct check utf8.Valid first).
func AppendEscaped(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// NeedsEscape reports whether s must be escaped to be a JSON string body.
func NeedsEscape(s []byte) bool {
	nonASCII := false
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' {
			return true
		}
		if c >= utf8.RuneSelf {
			nonASCII = true
		}
	}
	return nonASCII && !utf8.Valid(s)
}

// AppendCompact appends the JSON value v with all whitespace between tokens
// removed, so it fits on one NDJSON line. v must be valid JSON.
func AppendCompact(dst, v []byte) []byte {
	inStr := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if inStr {
			dst = append(dst, c)
			switch c {
			case '\\':
				if i+1 < len(v) {
					i++
					dst = append(dst, v[i])
				}
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		case '"':
			inStr = true
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
