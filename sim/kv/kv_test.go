package kv

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// testKV runs the behaviour every KV must have against fresh stores made by
// open.
func testKV(t *testing.T, open func(t *testing.T) KV) {
	tests := []struct {
		name string
		run  func(t *testing.T, s KV)
	}{
		{"missing key", func(t *testing.T, s KV) {
			v, ok, err := s.Get("nope")
			if err != nil || ok || v != nil {
				t.Errorf("Get(missing) = %q, %v, %v; want nil, false, nil", v, ok, err)
			}
		}},
		{"put get overwrite", func(t *testing.T, s KV) {
			mustPut(t, s, "a", "1")
			mustPut(t, s, "a", "2")
			wantGet(t, s, "a", "2")
		}},
		{"empty value is present", func(t *testing.T, s KV) {
			mustPut(t, s, "a", "")
			v, ok, err := s.Get("a")
			if err != nil || !ok || len(v) != 0 {
				t.Errorf("Get(empty value) = %q, %v, %v; want \"\", true, nil", v, ok, err)
			}
		}},
		{"put all", func(t *testing.T, s KV) {
			err := PutAll(s, []Entry{{"p/1", []byte("one")}, {"p/2", []byte("two")}, {"p/1", []byte("uno")}})
			if err != nil {
				t.Fatal(err)
			}
			wantGet(t, s, "p/1", "uno") // later entries win, as later Puts do
			wantGet(t, s, "p/2", "two")
			if err := PutAll(s, []Entry{{"p/3", nil}, {"", []byte("x")}}); err == nil {
				t.Error("PutAll with an empty key succeeded; want an error")
			}
		}},
		{"empty key rejected", func(t *testing.T, s KV) {
			if err := s.Put("", []byte("x")); err == nil {
				t.Error("Put(\"\") succeeded; want an error")
			}
		}},
		{"values are copied", func(t *testing.T, s KV) {
			in := []byte("abc")
			if err := s.Put("k", in); err != nil {
				t.Fatal(err)
			}
			in[0] = 'X'
			out, _, _ := s.Get("k")
			out[1] = 'Y'
			wantGet(t, s, "k", "abc")
		}},
		{"delete", func(t *testing.T, s KV) {
			mustPut(t, s, "a", "1")
			if err := s.Delete("a"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete("a"); err != nil {
				t.Errorf("Delete(missing) = %v; want nil", err)
			}
			if _, ok, _ := s.Get("a"); ok {
				t.Error("key still present after Delete")
			}
		}},
		{"scan prefix in order", func(t *testing.T, s KV) {
			for _, k := range []string{"p/c", "p/a", "q/a", "p", "p/b", "o"} {
				mustPut(t, s, k, "v"+k)
			}
			got := scan(t, s, "p/")
			want := []string{"p/a=vp/a", "p/b=vp/b", "p/c=vp/c"}
			if !slices.Equal(got, want) {
				t.Errorf("Scan(p/) = %q; want %q", got, want)
			}
			if got := scan(t, s, "zz"); len(got) != 0 {
				t.Errorf("Scan(zz) = %q; want nothing", got)
			}
			if got := scan(t, s, ""); len(got) != 6 {
				t.Errorf("Scan(\"\") saw %d keys; want 6", len(got))
			}
		}},
		{"scan stops on error", func(t *testing.T, s KV) {
			mustPut(t, s, "a", "1")
			mustPut(t, s, "b", "2")
			stop := errors.New("stop")
			n := 0
			err := s.Scan("", func(string, []byte) error { n++; return stop })
			if !errors.Is(err, stop) || n != 1 {
				t.Errorf("Scan = %v after %d calls; want %v after 1", err, n, stop)
			}
		}},
		{"scan may modify", func(t *testing.T, s KV) {
			mustPut(t, s, "a", "1")
			mustPut(t, s, "b", "2")
			err := s.Scan("", func(k string, _ []byte) error { return s.Delete(k) })
			if err != nil {
				t.Fatal(err)
			}
			if got := scan(t, s, ""); len(got) != 0 {
				t.Errorf("left after deleting while scanning: %q", got)
			}
		}},
		{"delete prefix", func(t *testing.T, s KV) {
			for i := range 50 {
				mustPut(t, s, fmt.Sprintf("signal/%02d", i), "x")
			}
			mustPut(t, s, "signal", "keep")
			mustPut(t, s, "chat/1", "keep")
			if err := s.DeletePrefix("signal/"); err != nil {
				t.Fatal(err)
			}
			got := scan(t, s, "")
			want := []string{"chat/1=keep", "signal=keep"}
			if !slices.Equal(got, want) {
				t.Errorf("after DeletePrefix: %q; want %q", got, want)
			}
		}},
		{"concurrent use", func(t *testing.T, s KV) {
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					k := fmt.Sprintf("k%d", i)
					if err := s.Put(k, []byte(k)); err != nil {
						t.Error(err)
					}
					if _, _, err := s.Get(k); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := scan(t, s, "k"); len(got) != 8 {
				t.Errorf("after concurrent puts: %q; want 8 keys", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

func TestMem(t *testing.T) {
	testKV(t, func(*testing.T) KV { return NewMem() })
}

func mustPut(t *testing.T, s KV, k, v string) {
	t.Helper()
	if err := s.Put(k, []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func wantGet(t *testing.T, s KV, k, want string) {
	t.Helper()
	v, ok, err := s.Get(k)
	if err != nil || !ok || string(v) != want {
		t.Errorf("Get(%q) = %q, %v, %v; want %q, true, nil", k, v, ok, err, want)
	}
}

// scan returns "key=value" for every key with the prefix, in scan order.
func scan(t *testing.T, s KV, prefix string) []string {
	t.Helper()
	var out []string
	err := s.Scan(prefix, func(k string, v []byte) error {
		out = append(out, k+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return out
}
