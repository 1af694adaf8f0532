package parity

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// entry flags.
const (
	flagLive      uint8 = iota // a live document (or an upsert)
	flagDelete                 // a delete (topic side)
	flagUnsettled              // an upsert inside the settle window (topic side)
)

// item is one (id, version) record of a sorted stream. Its ID is valid until
// the next call of the stream's Next.
type item struct {
	ID      []byte
	Version int64
	Seq     int64
	Flag    uint8
}

// less orders items by id (bytewise), then by version descending, then by
// sequence ascending: the first item of an id is the one that wins.
func less(a, b *item) int {
	if c := bytes.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	switch {
	case a.Version > b.Version:
		return -1
	case a.Version < b.Version:
		return 1
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// stream yields items in order. Next returns false at the end or on an
// error (then Err is set).
type stream interface {
	Next() (*item, bool)
	Err() error
	Close() error
}

// entrySize is the memory an entry takes besides its id bytes.
const entrySize = 32

type entry struct {
	off, n  uint32
	version int64
	seq     int64
	flag    uint8
}

// maxFanIn bounds how many runs one merge reads at once (each holds a read
// buffer of runBufSize).
const (
	maxFanIn   = 64
	runBufSize = 64 << 10
)

// minBudget is the smallest memory budget of a sorter.
const minBudget = 64 << 10

// sorter sorts items with bounded memory: items are kept in an arena until
// they would exceed half the budget (leaving room for slice growth), then
// sorted and written to a run file in dir. Not safe for concurrent use.
type sorter struct {
	dir    string
	budget int64
	arena  []byte
	ents   []entry
	runs   []string
	n      int64
	spills int
}

func newSorter(dir string, budget int64) *sorter {
	return &sorter{dir: dir, budget: max(budget, minBudget)}
}

// Add appends one item; id is copied.
func (s *sorter) Add(id []byte, version, seq int64, flag uint8) error {
	if int64(len(s.arena)+len(id))+int64(len(s.ents)+1)*entrySize > s.budget/2 && len(s.ents) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.ents = append(s.ents, entry{off: uint32(len(s.arena)), n: uint32(len(id)), version: version, seq: seq, flag: flag})
	s.arena = append(s.arena, id...)
	s.n++
	return nil
}

// Len is the number of items added.
func (s *sorter) Len() int64 { return s.n }

// Spills is the number of runs written to disk.
func (s *sorter) Spills() int { return s.spills }

func (s *sorter) sortMem() {
	a := s.arena
	slices.SortFunc(s.ents, func(x, y entry) int {
		ix := item{ID: a[x.off : x.off+x.n], Version: x.version, Seq: x.seq}
		iy := item{ID: a[y.off : y.off+y.n], Version: y.version, Seq: y.seq}
		return less(&ix, &iy)
	})
}

func (s *sorter) spill() error {
	s.sortMem()
	f, err := os.CreateTemp(s.dir, "run-*")
	if err != nil {
		return fmt.Errorf("spill sorted run: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	w := bufio.NewWriterSize(f, runBufSize)
	var buf [3 * binary.MaxVarintLen64]byte
	for _, e := range s.ents {
		n := binary.PutUvarint(buf[:], uint64(e.n))
		n += binary.PutVarint(buf[n:], e.version)
		n += binary.PutVarint(buf[n:], e.seq)
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("spill sorted run: %w", err)
		}
		w.WriteByte(e.flag)
		w.Write(s.arena[e.off : e.off+e.n])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("spill sorted run: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spill sorted run: %w", err)
	}
	s.spills++
	s.arena = s.arena[:0]
	s.ents = s.ents[:0]
	return nil
}

// Finish returns the items in order. With no spill they are read from
// memory; otherwise the remaining items are spilled too and the runs are
// merged (in several passes when there are more than maxFanIn).
func (s *sorter) Finish() (stream, error) {
	if len(s.runs) == 0 {
		s.sortMem()
		return &memStream{s: s, i: -1}, nil
	}
	if len(s.ents) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	s.arena, s.ents = nil, nil
	for len(s.runs) > maxFanIn {
		var next []string
		for i := 0; i < len(s.runs); i += maxFanIn {
			group := s.runs[i:min(i+maxFanIn, len(s.runs))]
			name, err := s.mergeToRun(group)
			if err != nil {
				return nil, err
			}
			next = append(next, name)
		}
		s.runs = next
	}
	return openMerge(s.runs)
}

// mergeToRun merges runs into one new run file and removes them.
func (s *sorter) mergeToRun(runs []string) (string, error) {
	m, err := openMerge(runs)
	if err != nil {
		return "", err
	}
	defer m.Close()
	f, err := os.CreateTemp(s.dir, "run-*")
	if err != nil {
		return "", fmt.Errorf("merge sorted runs: %w", err)
	}
	w := bufio.NewWriterSize(f, runBufSize)
	var buf [3 * binary.MaxVarintLen64]byte
	for it, ok := m.Next(); ok; it, ok = m.Next() {
		n := binary.PutUvarint(buf[:], uint64(len(it.ID)))
		n += binary.PutVarint(buf[n:], it.Version)
		n += binary.PutVarint(buf[n:], it.Seq)
		w.Write(buf[:n])
		w.WriteByte(it.Flag)
		w.Write(it.ID)
	}
	if err := m.Err(); err != nil {
		f.Close()
		return "", err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("merge sorted runs: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("merge sorted runs: %w", err)
	}
	for _, r := range runs {
		os.Remove(r)
	}
	return f.Name(), nil
}

// memStream iterates a sorter's in-memory entries.
type memStream struct {
	s   *sorter
	i   int
	cur item
}

func (m *memStream) Next() (*item, bool) {
	m.i++
	if m.i >= len(m.s.ents) {
		return nil, false
	}
	e := m.s.ents[m.i]
	m.cur = item{ID: m.s.arena[e.off : e.off+e.n], Version: e.version, Seq: e.seq, Flag: e.flag}
	return &m.cur, true
}

func (m *memStream) Err() error { return nil }

func (m *memStream) Close() error {
	m.s.arena, m.s.ents = nil, nil
	return nil
}

// runReader reads one run file.
type runReader struct {
	f   *os.File
	r   *bufio.Reader
	cur item
	buf []byte
}

func (r *runReader) next() (bool, error) {
	n, err := binary.ReadUvarint(r.r)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read sorted run %s: %w", r.f.Name(), err)
	}
	v, err := binary.ReadVarint(r.r)
	if err != nil {
		return false, fmt.Errorf("read sorted run %s: %w", r.f.Name(), err)
	}
	seq, err := binary.ReadVarint(r.r)
	if err != nil {
		return false, fmt.Errorf("read sorted run %s: %w", r.f.Name(), err)
	}
	flag, err := r.r.ReadByte()
	if err != nil {
		return false, fmt.Errorf("read sorted run %s: %w", r.f.Name(), err)
	}
	if uint64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return false, fmt.Errorf("read sorted run %s: %w", r.f.Name(), err)
	}
	r.cur = item{ID: r.buf, Version: v, Seq: seq, Flag: flag}
	return true, nil
}

// mergeStream merges run files with a heap.
type mergeStream struct {
	h    runHeap
	all  []*runReader
	last *runReader // advanced on the next call of Next
	err  error
	out  item
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return less(&h[i].cur, &h[j].cur) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func openMerge(runs []string) (*mergeStream, error) {
	m := &mergeStream{}
	for _, name := range runs {
		f, err := os.Open(name)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("open sorted run: %w", err)
		}
		r := &runReader{f: f, r: bufio.NewReaderSize(f, runBufSize)}
		m.all = append(m.all, r)
		ok, err := r.next()
		if err != nil {
			m.Close()
			return nil, err
		}
		if ok {
			m.h = append(m.h, r)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

func (m *mergeStream) Next() (*item, bool) {
	if m.err != nil {
		return nil, false
	}
	if m.last != nil {
		ok, err := m.last.next()
		if err != nil {
			m.err = err
			return nil, false
		}
		if ok {
			heap.Fix(&m.h, 0)
		} else {
			heap.Pop(&m.h)
		}
		m.last = nil
	}
	if len(m.h) == 0 {
		return nil, false
	}
	top := m.h[0]
	m.last = top
	m.out = top.cur
	return &m.out, true
}

func (m *mergeStream) Err() error { return m.err }

func (m *mergeStream) Close() error {
	for _, r := range m.all {
		r.f.Close()
	}
	m.all, m.h = nil, nil
	return nil
}
