package main

import (
	"fmt"
	"strings"
)

// instanceIDUsage documents --instance-id.
const instanceIDUsage = `static group membership: a stable id of this process (e.g. the StatefulSet pod name); ` +
	`a restarted process with the same id takes its partitions back at once instead of after --session-timeout, ` +
	`but a process that is gone for good holds its partitions until --session-timeout; ` +
	`"auto" uses the host name (the pod name in Kubernetes); empty: dynamic membership. Never give two running processes the same id`

// maxInstanceIDLen is Kafka's limit on group.instance.id.
const maxInstanceIDLen = 249

// resolveInstanceID turns --instance-id into the group.instance.id to use:
// "" stays "" (dynamic membership), "auto" becomes the host name, which in
// Kubernetes is the pod name. The result must be a legal Kafka instance id:
// 1 to 249 of [a-zA-Z0-9._-].
func resolveInstanceID(v string, hostname func() (string, error)) (string, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "":
		return "", nil
	case "auto":
		h, err := hostname()
		if err != nil || h == "" {
			return "", usageError{fmt.Errorf("flag --instance-id auto: no host name to use (%v); set the id explicitly", err)}
		}
		v = h
	}
	if len(v) > maxInstanceIDLen {
		return "", usageError{fmt.Errorf("flag --instance-id: %d characters, Kafka allows at most %d", len(v), maxInstanceIDLen)}
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return "", usageError{fmt.Errorf("flag --instance-id: %q has %q; Kafka allows only letters, digits, '.', '_' and '-'", v, r)}
		}
	}
	return v, nil
}
