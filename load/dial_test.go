package load

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

// A worker's dialer leaves the source port unchosen at bind(), the step
// net.Dialer takes between its Control and connect(), so the kernel picks
// it at connect() instead of searching for one free on the address.
func TestSourceDialerBindsNoPort(t *testing.T) {
	src := [4]byte{127, 0, 3, 2}
	d := sourceDialer(net.IP(src[:]).String())
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if d.Control != nil {
		if err := d.Control("tcp4", d.LocalAddr.String(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: src}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	if port := sa.(*syscall.SockaddrInet4).Port; port != 0 {
		t.Errorf("bind(%s) through the worker's dialer took port %d, want 0 (chosen at connect)", d.LocalAddr, port)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", l.Addr(), d.LocalAddr, err)
	}
	defer c.Close()
	if a := c.LocalAddr().(*net.TCPAddr); !a.IP.Equal(net.IP(src[:])) || a.Port == 0 {
		t.Errorf("connected from %s, want %s and a port", a, d.LocalAddr)
	}
}

// Dial time from one source address that already holds N connections, as
// a worker's does: bind() with port 0 searches for a port free on the
// address, longer the more it holds; with IP_BIND_ADDRESS_NO_PORT the port
// is chosen at connect(), per destination. The connections go to 6
// listeners, as a 100,000-device run's go to 6 relay nodes. The listeners
// close their end at once, so a held connection costs this process one
// file, not two; its client end stays open and keeps its port. cpu-ns/op
// is this process's CPU time per dial, both ends: on a shared machine
// ns/op counts other processes' time too.
func BenchmarkDialFromBusySource(b *testing.B) {
	src := "127.0.3.1"
	for _, held := range []int{0, 8000, 14000, 15000} {
		for _, noPort := range []bool{false, true} {
			b.Run(fmt.Sprintf("held=%d/bind_no_port=%t", held, noPort), func(b *testing.B) {
				d := sourceDialer(src)
				if !noPort {
					d.Control = nil
				}
				dsts := closingListeners(b, 6)
				dial := func(i int) *net.TCPConn {
					c, err := d.Dial("tcp", dsts[i%len(dsts)])
					if err != nil {
						b.Fatalf("dial %d from %s holding %d: %v", i, src, held, err)
					}
					// Closed with a reset, so no TIME_WAIT keeps the port.
					tc := c.(*net.TCPConn)
					tc.SetLinger(0)
					return tc
				}
				for i := range held {
					c := dial(i)
					b.Cleanup(func() { c.Close() })
				}
				i, cpu := 0, processCPU()
				for b.Loop() {
					dial(i).Close()
					i++
				}
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// closingListeners listens on n loopback ports and closes every connection
// it accepts.
func closingListeners(b *testing.B, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		addrs[i] = l.Addr().String()
	}
	return addrs
}
