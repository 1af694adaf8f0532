package chatgen

import (
	"strconv"
	"unicode/utf8"
)

// escMode selects how a document's strings are escaped. Real producers differ
// (Go's encoding/json escapes <, > and &; Python's json.dumps escapes every
// non-ASCII rune), and the pipeline must pass all of them through untouched.
type escMode uint8

const (
	escMinimal escMode = iota // only what JSON requires; UTF-8 kept as is
	escHTML                   // like Go's encoding/json: also <, >, &, U+2028, U+2029
	escASCII                  // like Python's ensure_ascii: every non-ASCII rune as \uXXXX
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal, quotes included.
func appendString(dst []byte, s string, mode escMode) []byte {
	dst = append(dst, '"')
	dst = appendStringBody(dst, s, mode)
	return append(dst, '"')
}

// appendStringBody appends the escaped content of s without quotes.
func appendStringBody(dst []byte, s string, mode escMode) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (mode != escHTML || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		if mode == escMinimal || (mode == escHTML && c != 0xe2) {
			i++ // UTF-8 passes through; only U+2028 and U+2029 (0xe2 ...) need a look
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case mode == escASCII:
			dst = append(dst, s[start:i]...)
			if r >= 0x10000 {
				r -= 0x10000
				dst = appendU(dst, 0xd800+(r>>10))
				dst = appendU(dst, 0xdc00+(r&0x3ff))
			} else {
				dst = appendU(dst, r)
			}
			start = i + size
		case mode == escHTML && (r == '\u2028' || r == '\u2029'):
			dst = append(dst, s[start:i]...)
			dst = appendU(dst, r)
			start = i + size
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendU appends a \uXXXX escape of a BMP code unit.
func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
}

// appendTime appends a quoted RFC 3339 UTC timestamp with milliseconds
// ("2024-11-24T01:39:05.678Z") taken from a non-negative Unix time in
// microseconds, or null when us is 0. It is a hand-written equivalent of
// time.Time.AppendFormat, which costs a fifth of the generator's time.
func appendTime(dst []byte, us int64) []byte {
	if us == 0 {
		return append(dst, "null"...)
	}
	const day = 86400_000_000
	days, rem := us/day, us%day
	y, m, d := civil(days)
	ms := rem / 1000
	dst = append(dst, '"')
	dst = appendPadded(dst, int(y), 4)
	dst = append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T')
	h, mi, sec, milli := ms/3600_000, ms/60_000%60, ms/1000%60, ms%1000
	dst = append(dst, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10), 'Z', '"')
	return dst
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse), for days >= 0.
func civil(days int64) (year int64, month, day int) {
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendPadded appends n in decimal, left-padded with zeros to width digits.
func appendPadded(dst []byte, n, width int) []byte {
	var buf [20]byte
	b := strconv.AppendInt(buf[:0], int64(n), 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}
