package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with the same line until the client closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func newTCP(t *testing.T, target string) *TCPProxy {
	t.Helper()
	p, err := NewTCP("127.0.0.1:0", target, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func roundTrip(c net.Conn, r *bufio.Reader, line string) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return s[:len(s)-1], nil
}

func TestTCPForwards(t *testing.T) {
	p := newTCP(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, line := range []string{"a", "こんにちは", "{\"op\":\"upsert\"}"} {
		got, err := roundTrip(c, r, line)
		if err != nil || got != line {
			t.Fatalf("echo of %q = %q, %v", line, got, err)
		}
	}
	if st := p.Stats(); st.Conns != 1 || st.Resets != 0 || st.Bytes == 0 {
		t.Errorf("stats %+v, want one connection, no reset, some bytes", st)
	}
}

func TestTCPResets(t *testing.T) {
	p := newTCP(t, echoServer(t))
	p.Set(TCPFaults{Reset: 1})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = roundTrip(c, bufio.NewReader(c), "x")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after an injected reset: %v, want ECONNRESET", err)
	}
	if st := p.Stats(); st.Resets != 1 {
		t.Errorf("stats %+v, want one reset", st)
	}
	// Without faults the next connection works.
	p.Set(TCPFaults{})
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(c2, bufio.NewReader(c2), "y"); err != nil || got != "y" {
		t.Fatalf("echo after the faults were lifted = %q, %v", got, err)
	}
}

func TestTCPResetAll(t *testing.T) {
	p := newTCP(t, echoServer(t))
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := roundTrip(c, bufio.NewReader(c), "hello"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := p.ResetAll(); n != 3 {
		t.Fatalf("ResetAll reset %d connections, want 3", n)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d still reads after ResetAll", i)
		}
	}
}

func TestTCPStalls(t *testing.T) {
	p := newTCP(t, echoServer(t))
	p.Set(TCPFaults{Stall: 1, MaxStall: 300 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, bufio.NewReader(c), "slow"); err != nil || got != "slow" {
		t.Fatalf("echo through stalls = %q, %v", got, err)
	}
	st := p.Stats()
	if st.Stalls < 2 || st.Stalled <= 0 || st.Stalled > 600*time.Millisecond {
		t.Errorf("stats %+v, want two stalls (one each way) of at most 300ms", st)
	}
}

func TestTCPTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newTCP(t, addr)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection to a dead target stayed open")
	}
}
