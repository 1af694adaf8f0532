package main

import (
	"errors"
	"strings"
	"testing"
)

func TestResolveInstanceID(t *testing.T) {
	host := func(h string, err error) func() (string, error) { return func() (string, error) { return h, err } }
	for _, c := range []struct {
		in, host string
		hostErr  error
		want     string
		errWant  string
	}{
		{in: "", want: ""},
		{in: "  ", want: ""},
		{in: "reindexer-0", want: "reindexer-0"},
		{in: "auto", host: "reindexer-2", want: "reindexer-2"},
		{in: "auto", host: "", errWant: "flag --instance-id auto: no host name"},
		{in: "auto", hostErr: errors.New("boom"), errWant: "boom"},
		{in: "a b", errWant: `flag --instance-id: "a b" has ' '`},
		{in: strings.Repeat("x", 250), errWant: "at most 249"},
	} {
		got, err := resolveInstanceID(c.in, host(c.host, c.hostErr))
		if c.errWant != "" {
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), c.errWant) || !errors.As(err, &ue) {
				t.Errorf("resolveInstanceID(%q) = %q, %v; want a usage error with %q", c.in, got, err, c.errWant)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("resolveInstanceID(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
