package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// TCPFaults configures what a TCPProxy does to the bytes it forwards. Each
// decision is made per chunk read from either side of a connection, so
// faults hit busy connections more often, as real network trouble does.
// Rates are probabilities in [0, 1].
type TCPFaults struct {
	// Reset is the chance that a chunk is dropped and both sides of its
	// connection are reset (TCP RST, as a restarted load balancer or a
	// killed NAT entry does).
	Reset float64
	// Stall is the chance that a chunk is held back for a random time up to
	// MaxStall before it is forwarded (a congested or half-dead link).
	Stall float64
	// MaxStall bounds one stall. Default 2s.
	MaxStall time.Duration
}

// TCPStats are a TCPProxy's books.
type TCPStats struct {
	Conns   int           // connections accepted
	Resets  int           // connections reset by a fault
	Stalls  int           // chunks held back
	Stalled time.Duration // total time chunks were held back
	Bytes   int64         // bytes forwarded, both directions
}

// TCPProxy forwards TCP connections to a target address and injects faults
// into them: connection resets and stalled reads. It knows nothing of the
// protocol, so it works in front of a Kafka broker as in front of an
// OpenSearch node. (A Kafka client reconnects to the address the broker
// advertises, so the broker must advertise the proxy's address for the
// client to stay behind the proxy.)
type TCPProxy struct {
	ln     net.Listener
	target string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	faults TCPFaults
	rng    *rand.Rand
	stats  TCPStats
	conns  map[*tcpPair]struct{}
}

// tcpPair is one proxied connection: the client side and the target side.
type tcpPair struct {
	client, server net.Conn
	once           sync.Once
}

// NewTCP listens on listen (e.g. "127.0.0.1:0", or a fixed port a broker
// advertises) and forwards every connection to target. seed makes the fault
// decisions repeatable.
func NewTCP(listen, target string, seed uint64) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &TCPProxy{
		ln: ln, target: target, ctx: ctx, cancel: cancel,
		rng:   rand.New(rand.NewPCG(seed, 17)),
		conns: map[*tcpPair]struct{}{},
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Set replaces the faults; connections already open use them from their
// next chunk on.
func (p *TCPProxy) Set(f TCPFaults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Stats returns a copy of the books.
func (p *TCPProxy) Stats() TCPStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// ResetAll resets every open connection at once and returns how many it
// reset.
func (p *TCPProxy) ResetAll() int {
	p.mu.Lock()
	pairs := make([]*tcpPair, 0, len(p.conns))
	for c := range p.conns {
		pairs = append(pairs, c)
	}
	p.stats.Resets += len(pairs)
	p.mu.Unlock()
	for _, c := range pairs {
		c.reset()
	}
	return len(pairs)
}

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines to end.
func (p *TCPProxy) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("faultproxy: close listener: %w", err)
	}
	return nil
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *TCPProxy) serve(client net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 5 * time.Second}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		// The target is down: the client sees its connection closed, as
		// it would see a refused connection behind a load balancer.
		client.Close()
		return
	}
	pair := &tcpPair{client: client, server: server}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		pair.close()
		return
	}
	p.conns[pair] = struct{}{}
	p.stats.Conns++
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(pair, client, server) })
	wg.Go(func() { p.pipe(pair, server, client) })
	wg.Wait()
	pair.close()
	p.mu.Lock()
	delete(p.conns, pair)
	p.mu.Unlock()
}

// fault is the decision for one chunk.
type fault struct {
	reset bool
	stall time.Duration
}

func (p *TCPProxy) decide() fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	x := p.rng.Float64()
	switch {
	case x < f.Reset:
		p.stats.Resets++
		return fault{reset: true}
	case x < f.Reset+f.Stall:
		maxStall := f.MaxStall
		if maxStall <= 0 {
			maxStall = 2 * time.Second
		}
		d := time.Duration(p.rng.Int64N(int64(maxStall)) + 1)
		p.stats.Stalls++
		p.stats.Stalled += d
		return fault{stall: d}
	}
	return fault{}
}

// pipe copies src to dst chunk by chunk, applying a fault decision to each
// chunk. An EOF from src is passed on as a half-close; any other failure
// closes both sides, which ends the other direction too.
func (p *TCPProxy) pipe(pair *tcpPair, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f := p.decide()
			if f.reset {
				pair.reset()
				return
			}
			if f.stall > 0 {
				select {
				case <-time.After(f.stall):
				case <-p.ctx.Done():
					pair.close()
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				pair.close()
				return
			}
			p.mu.Lock()
			p.stats.Bytes += int64(n)
			p.mu.Unlock()
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
				return
			}
			pair.close()
			return
		}
	}
}

// reset closes both sides with SO_LINGER 0, so each peer gets a TCP RST
// instead of an orderly FIN.
func (c *tcpPair) reset() {
	c.once.Do(func() {
		for _, s := range []net.Conn{c.client, c.server} {
			if tc, ok := s.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			s.Close()
		}
	})
}

func (c *tcpPair) close() {
	c.once.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}
