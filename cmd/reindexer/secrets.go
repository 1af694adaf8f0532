package main

import (
	"bytes"
	"io"
	"strings"
)

// Secrets never reach the output. Two layers keep them out:
//
//   - where a URL is printed on purpose (an error naming the cluster it
//     could not reach, a flag value it rejects), redactURLs replaces the
//     password of its userinfo first;
//   - Main wraps stdout and stderr in a scrubber that replaces every secret
//     the command line and the REINDEXER_* environment hold (values of
//     password, secret and token flags, passwords inside URLs) wherever it
//     shows up: in logs, in library errors that quote a URL, in help text,
//     in a printed plan.

// redacted replaces a secret in output.
const redacted = "xxxxx"

// minScrubLen is the shortest secret the output scrubber replaces:
// scrubbing one- to three-character strings everywhere would garble the
// output. URLs are redacted structurally whatever the password's length.
const minScrubLen = 4

// redactURLs returns s, a URL or a comma-separated list of URLs (with or
// without a scheme), with the password of every userinfo replaced.
func redactURLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if _, pass, ok := urlPassword(p); ok && pass != "" {
			parts[i] = strings.Replace(p, ":"+pass+"@", ":"+redacted+"@", 1)
		}
	}
	return strings.Join(parts, ",")
}

// urlPassword finds the password of the userinfo in u
// ([scheme://]user:password@host...): the part between the first ':' of
// the userinfo and the last '@' of the authority.
func urlPassword(u string) (user, pass string, ok bool) {
	rest := strings.TrimSpace(u)
	if _, after, found := strings.Cut(rest, "://"); found {
		rest = after
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", "", false
	}
	user, pass, ok = strings.Cut(rest[:at], ":")
	return user, pass, ok
}

// isSecretFlag reports whether the flag (or variable) name holds a secret.
func isSecretFlag(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}

// secretsIn collects the secrets in args, in environ (KEY=VALUE entries;
// REINDEXER_* ones, and the AWS secret key and session token) and in the
// configuration file they name
// (--config or REINDEXER_CONFIG): values of password, secret and token
// flags, variables and settings, and passwords inside URLs.
func secretsIn(args, environ []string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= minScrubLen {
			out = append(out, s)
		}
	}
	urls := func(v string) {
		for _, p := range strings.Split(v, ",") {
			if _, pass, ok := urlPassword(p); ok {
				add(pass)
			}
		}
	}
	for i, a := range args {
		urls(a)
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !isSecretFlag(name) {
			continue
		}
		if hasVal {
			add(val)
		} else if i+1 < len(args) {
			add(args[i+1])
		}
	}
	configPath := ""
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k == "AWS_SECRET_ACCESS_KEY" || k == "AWS_SESSION_TOKEN" { // read by --opensearch-auth aws and aws-msk-iam
			add(v)
		}
		if !strings.HasPrefix(k, envPrefix) {
			continue
		}
		urls(v)
		if isSecretFlag(k) {
			add(v)
		}
		if k == envName(configFlag) {
			configPath = v
		}
	}
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == configFlag {
			if hasVal {
				configPath = val
			} else if i+1 < len(args) {
				configPath = args[i+1]
			}
		}
	}
	if configPath != "" && len(args) > 0 {
		// Errors are reported by the command when it reads the file.
		if cf, err := loadConfig(configPath, args[0], []string{"run", "replay", "parity", "probe", "cutover"}); err == nil {
			for name, st := range cf.settings {
				urls(st.value)
				if isSecretFlag(name) {
					add(st.value)
				}
			}
		}
	}
	return out
}

// scrubber replaces secrets in everything written through it. Each Write
// is expected to hold whole messages (a log line, an error), as slog and
// fmt.Fprint* write them.
type scrubber struct {
	w       io.Writer
	secrets [][]byte
}

// scrub returns w, wrapped so that none of secrets passes through.
func scrub(w io.Writer, secrets []string) io.Writer {
	if len(secrets) == 0 {
		return w
	}
	s := &scrubber{w: w}
	for _, sec := range secrets {
		s.secrets = append(s.secrets, []byte(sec))
	}
	return s
}

// Write writes p with every secret replaced and reports len(p) written.
func (s *scrubber) Write(p []byte) (int, error) {
	out := p
	for _, sec := range s.secrets {
		if bytes.Contains(out, sec) {
			out = bytes.ReplaceAll(out, sec, []byte(redacted))
		}
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// unwrapWriter returns the writer a scrubber wraps (to tell whether the
// output is a terminal), or w itself.
func unwrapWriter(w io.Writer) io.Writer {
	if s, ok := w.(*scrubber); ok {
		return s.w
	}
	return w
}
