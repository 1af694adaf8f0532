package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureDLQ makes sure the dead-letter topic exists, creating it with the
// broker's default partitions and replication if it does not. A failure is
// only a warning: the records that need the topic then hold their partition
// (uncommitted, retried) until it exists, which the logs make loud.
func ensureDLQ(ctx context.Context, adm *kadm.Client, topic string, log *slog.Logger) {
	if topic == "" {
		log.Warn("no dead-letter topic (--dlq-topic none): the first record that can never be indexed stops the worker")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	td, err := adm.ListTopics(cctx, topic)
	if err == nil {
		if d, ok := td[topic]; ok && d.Err == nil {
			return
		}
	}
	_, err = adm.CreateTopic(cctx, -1, -1, nil, topic)
	switch {
	case err == nil:
		log.Info("created the dead-letter topic", "topic", topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		log.Warn("the dead-letter topic does not exist and could not be created; records that cannot be indexed will wait, uncommitted, until it exists",
			"topic", topic, "err", err)
	}
}
