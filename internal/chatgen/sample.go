package chatgen

// SampleEvents is the number of events in testdata/chat-events.jsonl.
const SampleEvents = 300

// SampleConfig is the configuration that generates testdata/chat-events.jsonl
// (SampleEvents events): few ids, so that edits, deletes, re-creates,
// duplicates and late events all show up in a file a person can read.
func SampleConfig() Config {
	return Config{
		Seed:           20241124,
		IDs:            170,
		Rooms:          6,
		Senders:        14,
		EditProb:       0.22,
		DeleteProb:     0.07,
		RecreateProb:   0.03,
		DuplicateProb:  0.02,
		OutOfOrderProb: 0.03,
	}
}

// Sample returns the events of testdata/chat-events.jsonl.
func Sample() []Event {
	return MustNew(SampleConfig()).Stream(SampleEvents)
}
