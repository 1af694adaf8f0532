// Package chatgen generates deterministic streams of realistic chat-message
// events in reindexer's default envelope (docs/design.md §5), for tests, demos and
// benchmarks.
//
// Every event is one Kafka record: the key is the document id and the value
// is one JSON object,
//
//	{"op":"upsert","id":"r42-m1001","version":1732412345678001,"doc":{...}}
//	{"op":"delete","id":"r42-m1001","version":1732412399000000}
//
// or, for a delete emitted as a Kafka tombstone, a nil value with the version
// in the record header named VersionHeader (ASCII decimal).
//
// Versions are update timestamps in microseconds taken from one clock that
// only moves forward, so every id's creates, edits, deletes and re-creates
// carry strictly increasing versions. Two kinds of event break that order on
// purpose, as real pipelines do: a duplicate re-emits an earlier event byte
// for byte, and a late (out-of-order) event is an upsert whose version lies
// strictly between the id's two newest versions and is emitted after the
// newest one. No two different events of one id share a version.
//
// A Generator is deterministic for a given Config and is not safe for
// concurrent use.
package chatgen

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Envelope op values.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// VersionHeader is the Kafka record header that carries the version of a
// tombstone (nil-value) delete, formatted as an ASCII decimal integer.
const VersionHeader = "version"

// Kind says why the generator emitted an event.
type Kind uint8

// The kinds of event. KindUnknown is the kind of an event read back from
// bytes (ParseValue, ReadJSONL), where the reason is no longer known.
const (
	KindUnknown   Kind = iota
	KindCreate         // first upsert of an id
	KindUpdate         // later upsert of a live id (body edit or reaction change)
	KindDelete         // delete of a live id
	KindRecreate       // upsert of a deleted id
	KindDuplicate      // byte-identical re-emission of an earlier event
	KindLate           // upsert with an older version than the id's newest, emitted after it
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindUnknown:
		return "unknown"
	case KindCreate:
		return "create"
	case KindUpdate:
		return "update"
	case KindDelete:
		return "delete"
	case KindRecreate:
		return "recreate"
	case KindDuplicate:
		return "duplicate"
	case KindLate:
		return "late"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Default values used for zero fields of Config.
const (
	DefaultIDs           = 10000
	DefaultRooms         = 12
	DefaultSenders       = 40
	DefaultStartVersion  = int64(1732412345678001) // 2024-11-24T01:39:05.678001Z
	DefaultMaxStepMicros = int64(3_000_000)
)

// Config configures a Generator. The probabilities are per emitted event and
// are tried in this order: DuplicateProb, OutOfOrderProb, DeleteProb,
// RecreateProb, EditProb; the rest of the probability mass creates new
// documents. When the drawn kind is impossible (nothing to duplicate, no live
// id to edit or delete, no deleted id to re-create, no id with two versions
// to send late) the generator falls back to a create, and once all IDs exist,
// to an edit, then to a re-create. Measured rates therefore match the
// configured ones when IDs is large compared with the number of events.
type Config struct {
	// Seed determines the whole stream.
	Seed int64
	// IDs is the number of distinct documents (default DefaultIDs).
	IDs int
	// Rooms is the number of chat rooms (default DefaultRooms).
	Rooms int
	// Senders is the number of distinct users (default DefaultSenders).
	Senders int

	// EditProb is the probability of an update of a live message: a body
	// edit (edit_count and edited_at change) or a reaction change.
	EditProb float64
	// DeleteProb is the probability of deleting a live message.
	DeleteProb float64
	// RecreateProb is the probability of re-creating (restoring) a deleted
	// message with a new, higher version.
	RecreateProb float64
	// DuplicateProb is the probability of re-emitting one of the last
	// RingSize events byte for byte.
	DuplicateProb float64
	// OutOfOrderProb is the probability of a late upsert: an edit of an id
	// with at least two versions whose version lies strictly between the
	// id's two newest versions, emitted after the newest.
	OutOfOrderProb float64
	// TombstoneProb is the probability that a delete is emitted as a Kafka
	// tombstone (nil value, version in the VersionHeader header) rather
	// than as a delete envelope. 1 emits every delete as a tombstone.
	TombstoneProb float64

	// StartVersion is the first version, in microseconds since the Unix
	// epoch (default DefaultStartVersion).
	StartVersion int64
	// MaxStepMicros bounds how far the clock moves between two events; each
	// step is 1 ms plus a random part below MaxStepMicros (default
	// DefaultMaxStepMicros).
	MaxStepMicros int64
}

// DefaultConfig returns a realistic mix: mostly new messages, a quarter
// edits, some deletes, rare re-creates, duplicates and late events.
func DefaultConfig(seed int64) Config {
	return Config{
		Seed:           seed,
		IDs:            DefaultIDs,
		Rooms:          DefaultRooms,
		Senders:        DefaultSenders,
		EditProb:       0.25,
		DeleteProb:     0.05,
		RecreateProb:   0.01,
		DuplicateProb:  0.02,
		OutOfOrderProb: 0.02,
	}
}

// RingSize is how many recent events a duplicate may be copied from.
const RingSize = 1024

// maxIDs keeps id indexes within int32.
const maxIDs = math.MaxInt32 - 1

func (c Config) withDefaults() Config {
	if c.IDs == 0 {
		c.IDs = DefaultIDs
	}
	if c.Rooms == 0 {
		c.Rooms = DefaultRooms
	}
	if c.Senders == 0 {
		c.Senders = DefaultSenders
	}
	if c.StartVersion == 0 {
		c.StartVersion = DefaultStartVersion
	}
	if c.MaxStepMicros == 0 {
		c.MaxStepMicros = DefaultMaxStepMicros
	}
	return c
}

// Validate reports the first problem with c (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.IDs < 0 || c.IDs > maxIDs:
		return fmt.Errorf("chatgen: IDs %d out of range [1, %d]", c.IDs, maxIDs)
	case c.Rooms < 0 || c.Rooms > math.MaxInt32:
		return fmt.Errorf("chatgen: Rooms %d out of range", c.Rooms)
	case c.Senders < 0 || c.Senders > math.MaxInt32:
		return fmt.Errorf("chatgen: Senders %d out of range", c.Senders)
	case c.StartVersion < 0:
		return fmt.Errorf("chatgen: StartVersion %d is negative", c.StartVersion)
	case c.MaxStepMicros < 0:
		return fmt.Errorf("chatgen: MaxStepMicros %d is negative", c.MaxStepMicros)
	}
	probs := []struct {
		name string
		p    float64
	}{
		{"EditProb", c.EditProb}, {"DeleteProb", c.DeleteProb}, {"RecreateProb", c.RecreateProb},
		{"DuplicateProb", c.DuplicateProb}, {"OutOfOrderProb", c.OutOfOrderProb}, {"TombstoneProb", c.TombstoneProb},
	}
	for _, p := range probs {
		if !(p.p >= 0 && p.p <= 1) {
			return fmt.Errorf("chatgen: %s %v out of range [0, 1]", p.name, p.p)
		}
	}
	if sum := c.EditProb + c.DeleteProb + c.RecreateProb + c.DuplicateProb + c.OutOfOrderProb; sum > 1+1e-9 {
		return fmt.Errorf("chatgen: EditProb+DeleteProb+RecreateProb+DuplicateProb+OutOfOrderProb = %v exceeds 1", sum)
	}
	return nil
}

// Stats counts the events emitted so far by kind.
type Stats struct {
	Events     int64 // all events
	Creates    int64 // KindCreate
	Updates    int64 // KindUpdate
	Deletes    int64 // KindDelete (envelope or tombstone)
	Recreates  int64 // KindRecreate
	Duplicates int64 // KindDuplicate
	Late       int64 // KindLate
	Tombstones int64 // deletes emitted as Kafka tombstones, duplicates of them included
}

// Meta describes the event produced by Generator.AppendValue.
type Meta struct {
	// Kind says why the event was emitted.
	Kind Kind
	// Op is OpUpsert or OpDelete.
	Op string
	// Key is the record key (the document id). It aliases the generator's
	// memory and is valid until the next call on the generator.
	Key []byte
	// Version is the event's version.
	Version int64
	// Tombstone reports a Kafka tombstone: the value is nil and the version
	// belongs in the VersionHeader header.
	Tombstone bool
	// Doc is the document inside the envelope (nil for deletes). It aliases
	// the buffer returned by AppendValue.
	Doc []byte
}

type status uint8

const (
	unborn status = iota
	live
	deleted
)

// docState is everything needed to regenerate any version of one document.
type docState struct {
	latest, prev int64 // newest and second-newest version (prev 0: none)
	created      int64 // created_at, µs
	editedAt     int64 // edited_at, µs (0: never edited)
	seed         uint64
	room         int32
	sender       int32
	replyTo      int32 // id index + 1 of the message replied to, 0: none
	pos          int32 // index in the live or deleted list
	edits        uint32
	reacts       uint32
	status       status
	mode         escMode
	client       uint8
}

type sender struct {
	id, name, short string
	ja              bool
}

type room struct {
	id, name string
}

type ringSlot struct {
	meta     Meta
	key      []byte
	value    []byte
	docStart int
	docEnd   int
}

// Generator produces a deterministic stream of chat-message events.
type Generator struct {
	cfg     Config
	thr     [5]float64 // cumulative thresholds: duplicate, late, delete, recreate, edit
	r       rng
	now     int64
	docs    []docState
	created int32
	live    []int32
	deleted []int32
	multi   []int32 // ids with at least two versions (candidates for late events)
	senders []sender
	rooms   []room
	ring    []ringSlot
	ringN   int    // slots filled
	ringAt  int    // next slot to write
	scratch []byte // Next's value buffer
	key     []byte // current event's key
	stats   Stats
}

// New returns a generator for cfg; zero IDs, Rooms, Senders, StartVersion and
// MaxStepMicros take their defaults.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Generator{
		cfg:  cfg,
		r:    newRNG(uint64(cfg.Seed)),
		now:  cfg.StartVersion,
		docs: make([]docState, cfg.IDs),
		ring: make([]ringSlot, RingSize),
	}
	t := 0.0
	for i, p := range []float64{cfg.DuplicateProb, cfg.OutOfOrderProb, cfg.DeleteProb, cfg.RecreateProb, cfg.EditProb} {
		t += p
		g.thr[i] = t
	}
	g.senders = makeSenders(cfg.Senders)
	g.rooms = makeRooms(cfg.Rooms)
	return g, nil
}

// MustNew is New for configurations known to be valid; it panics on error.
func MustNew(cfg Config) *Generator {
	g, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return g
}

// Config returns the generator's configuration with defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Stats returns the counts of events emitted so far.
func (g *Generator) Stats() Stats { return g.stats }

func makeSenders(n int) []sender {
	s := make([]sender, n)
	for i := range s {
		ja := i%3 != 2
		var name, short string
		if ja {
			sur := jaSurnames[(i*5+i/len(jaSurnames))%len(jaSurnames)]
			given := jaGivenNames[(i*7+1)%len(jaGivenNames)]
			name, short = sur+" "+given, sur
		} else {
			first := enFirstNames[(i*5+i/len(enFirstNames))%len(enFirstNames)]
			last := enLastNames[(i*7+3)%len(enLastNames)]
			name, short = first+" "+last, first
		}
		s[i] = sender{id: "u" + string(appendPadded(nil, i+1, 4)), name: name, short: short, ja: ja}
	}
	return s
}

func makeRooms(n int) []room {
	rs := make([]room, n)
	for i := range rs {
		name := roomNames[i%len(roomNames)]
		if i >= len(roomNames) {
			name += "-" + strconv.Itoa(i/len(roomNames)+1)
		}
		rs[i] = room{id: "r" + strconv.Itoa(i+1), name: name}
	}
	return rs
}

// Next returns the next event. The event owns its memory.
func (g *Generator) Next() Event {
	var m Meta
	g.scratch, m = g.AppendValue(g.scratch[:0])
	e := Event{Kind: m.Kind, Op: m.Op, ID: string(m.Key), Version: m.Version, Tombstone: m.Tombstone}
	if m.Doc != nil {
		e.Doc = append(json.RawMessage(nil), m.Doc...)
	}
	return e
}

// Stream returns the next n events.
func (g *Generator) Stream(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = g.Next()
	}
	return evs
}

// AppendValue generates the next event, appends its record value (the
// envelope; nothing for a tombstone) to dst and returns the extended buffer
// and the event's metadata. It is the low-allocation path for large streams:
// after warm-up it allocates nothing beyond growing dst. For the same Config,
// the values are byte-identical to those of Next().Value().
func (g *Generator) AppendValue(dst []byte) ([]byte, Meta) {
	g.stats.Events++
	u := g.r.float()
	if u < g.thr[0] && g.ringN > 0 {
		return g.duplicate(dst)
	}
	start := len(dst)
	var (
		m        Meta
		docStart = -1
		docEnd   = -1
	)
	switch {
	case u < g.thr[0]:
		dst, m, docStart = g.fallback(dst)
	case u < g.thr[1]:
		if id, ok := g.lateCandidate(); ok {
			dst, m, docStart = g.late(dst, id)
		} else {
			dst, m, docStart = g.fallback(dst)
		}
	case u < g.thr[2] && len(g.live) > 0:
		dst, m = g.delete(dst, g.live[g.r.intn(len(g.live))])
	case u < g.thr[2]:
		dst, m, docStart = g.fallback(dst)
	case u < g.thr[3] && len(g.deleted) > 0:
		dst, m, docStart = g.upsert(dst, KindRecreate, g.deleted[g.r.intn(len(g.deleted))])
	case u < g.thr[3]:
		dst, m, docStart = g.fallback(dst)
	case u < g.thr[4] && len(g.live) > 0:
		dst, m, docStart = g.upsert(dst, KindUpdate, g.live[g.r.intn(len(g.live))])
	default:
		dst, m, docStart = g.fallback(dst)
	}
	if docStart >= 0 {
		docEnd = len(dst) - 1
		m.Doc = dst[docStart:docEnd]
	}
	g.count(m)
	// Remember the event for later duplicates.
	slot := &g.ring[g.ringAt]
	g.ringAt = (g.ringAt + 1) % len(g.ring)
	if g.ringN < len(g.ring) {
		g.ringN++
	}
	slot.key = append(slot.key[:0], m.Key...)
	slot.value = append(slot.value[:0], dst[start:]...)
	slot.docStart, slot.docEnd = -1, -1
	if docStart >= 0 {
		slot.docStart, slot.docEnd = docStart-start, docEnd-start
	}
	slot.meta = m
	slot.meta.Key = slot.key
	slot.meta.Doc = nil
	m.Key = slot.key
	return dst, m
}

func (g *Generator) count(m Meta) {
	switch m.Kind {
	case KindCreate:
		g.stats.Creates++
	case KindUpdate:
		g.stats.Updates++
	case KindDelete:
		g.stats.Deletes++
	case KindRecreate:
		g.stats.Recreates++
	case KindDuplicate:
		g.stats.Duplicates++
	case KindLate:
		g.stats.Late++
	}
	if m.Tombstone {
		g.stats.Tombstones++
	}
}

// duplicate re-emits one of the recent events byte for byte.
func (g *Generator) duplicate(dst []byte) ([]byte, Meta) {
	// The slot ringAt-1-k holds the (k+1)-th most recent event.
	k := g.r.intn(g.ringN)
	slot := &g.ring[(g.ringAt-1-k+2*len(g.ring))%len(g.ring)]
	start := len(dst)
	dst = append(dst, slot.value...)
	m := slot.meta
	m.Kind = KindDuplicate
	if slot.docStart >= 0 {
		m.Doc = dst[start+slot.docStart : start+slot.docEnd]
	}
	g.count(m)
	return dst, m
}

// fallback emits a create while ids remain, else an update, else a re-create.
func (g *Generator) fallback(dst []byte) ([]byte, Meta, int) {
	switch {
	case int(g.created) < len(g.docs):
		id := g.created
		g.created++
		return g.upsert(dst, KindCreate, id)
	case len(g.live) > 0:
		return g.upsert(dst, KindUpdate, g.live[g.r.intn(len(g.live))])
	default:
		return g.upsert(dst, KindRecreate, g.deleted[g.r.intn(len(g.deleted))])
	}
}

// tick advances the clock and returns the new version.
func (g *Generator) tick() int64 {
	g.now += 1000
	if g.cfg.MaxStepMicros > 0 {
		g.now += g.r.int63n(g.cfg.MaxStepMicros)
	}
	return g.now
}

// bump records a new newest version of a document.
func (g *Generator) bump(id int32, st *docState, v int64) {
	if st.latest != 0 && st.prev == 0 {
		g.multi = append(g.multi, id)
	}
	st.prev, st.latest = st.latest, v
}

func removeAt(list []int32, docs []docState, id int32) []int32 {
	i := docs[id].pos
	last := list[len(list)-1]
	list[i] = last
	docs[last].pos = i
	return list[:len(list)-1]
}

func (g *Generator) setStatus(id int32, s status) {
	st := &g.docs[id]
	switch st.status {
	case live:
		g.live = removeAt(g.live, g.docs, id)
	case deleted:
		g.deleted = removeAt(g.deleted, g.docs, id)
	}
	st.status = s
	switch s {
	case live:
		st.pos = int32(len(g.live))
		g.live = append(g.live, id)
	case deleted:
		st.pos = int32(len(g.deleted))
		g.deleted = append(g.deleted, id)
	}
}

// upsert emits a create, update or re-create of id with a new version.
func (g *Generator) upsert(dst []byte, kind Kind, id int32) ([]byte, Meta, int) {
	st := &g.docs[id]
	v := g.tick()
	switch kind {
	case KindCreate:
		g.initDoc(id, st, v)
	case KindUpdate:
		if g.r.chance(0.6) {
			st.edits++
			st.editedAt = v
		} else {
			st.reacts++
		}
	case KindRecreate:
		// A restored message comes back with a corrected body.
		st.edits++
		st.editedAt = v
	}
	g.bump(id, st, v)
	if st.status != live {
		g.setStatus(id, live)
	}
	return g.appendUpsert(dst, kind, id, st, v, int(st.edits), st.editedAt)
}

// late emits an edit of id whose version lies between its two newest ones.
func (g *Generator) late(dst []byte, id int32) ([]byte, Meta, int) {
	st := &g.docs[id]
	v := st.prev + 1 + g.r.int63n(st.latest-st.prev-1)
	st.prev = v // later late events of this id stay distinct and newer
	return g.appendUpsert(dst, KindLate, id, st, v, int(st.edits)+1, v)
}

func (g *Generator) lateCandidate() (int32, bool) {
	if len(g.multi) == 0 {
		return 0, false
	}
	for range 8 {
		id := g.multi[g.r.intn(len(g.multi))]
		if st := &g.docs[id]; st.latest-st.prev >= 2 {
			return id, true
		}
	}
	return 0, false
}

// delete emits a delete of a live id with a new, highest version.
func (g *Generator) delete(dst []byte, id int32) ([]byte, Meta) {
	st := &g.docs[id]
	v := g.tick()
	g.bump(id, st, v)
	g.setStatus(id, deleted)
	m := Meta{Kind: KindDelete, Op: OpDelete, Version: v}
	m.Key = g.makeKey(id)
	if g.cfg.TombstoneProb > 0 && (g.cfg.TombstoneProb >= 1 || g.r.chance(g.cfg.TombstoneProb)) {
		m.Tombstone = true
		return dst, m
	}
	dst = appendEnvelopeHead(dst, OpDelete, m.Key, v)
	return append(dst, '}'), m
}

func (g *Generator) initDoc(id int32, st *docState, v int64) {
	st.created = v
	st.seed = g.r.next()
	st.room = int32(g.r.intn(len(g.rooms)))
	st.sender = int32(g.r.intn(len(g.senders)))
	st.client = uint8(g.r.intn(len(clients)))
	switch x := g.r.intn(20); {
	case x == 0:
		st.mode = escASCII
	case x == 1:
		st.mode = escHTML
	default:
		st.mode = escMinimal
	}
	if id > 0 && g.r.chance(0.15) {
		st.replyTo = int32(g.r.intn(int(id))) + 1
	}
}

// appendEnvelopeHead appends the envelope up to (not including) the doc
// field or the closing brace.
func appendEnvelopeHead(dst []byte, op string, key []byte, version int64) []byte {
	dst = append(dst, `{"op":"`...)
	dst = append(dst, op...)
	dst = append(dst, `","id":`...)
	dst = appendString(dst, string(key), escMinimal)
	dst = append(dst, `,"version":`...)
	return strconv.AppendInt(dst, version, 10)
}

func (g *Generator) appendUpsert(dst []byte, kind Kind, id int32, st *docState, v int64, edits int, editedAt int64) ([]byte, Meta, int) {
	key := g.makeKey(id)
	dst = appendEnvelopeHead(dst, OpUpsert, key, v)
	dst = append(dst, `,"doc":`...)
	docStart := len(dst)
	dst = g.appendDoc(dst, id, st, edits, editedAt)
	dst = append(dst, '}')
	return dst, Meta{Kind: kind, Op: OpUpsert, Key: key, Version: v}, docStart
}
