package fhir

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// readBody must give what io.ReadAll gives, whatever the announced size.
func TestReadBodyMatchesReadAll(t *testing.T) {
	broken := errors.New("connection reset")
	readers := map[string]func([]byte) io.Reader{
		"at once":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"half reads": func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"with EOF":   func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"broken":     func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b), errReader{broken}) },
	}
	for _, n := range []int{0, 1, 1000, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte('a' + i%26)
		}
		for name, r := range readers {
			want, werr := io.ReadAll(r(data))
			for _, size := range []int64{-1, 0, 1, int64(n) / 2, int64(n) - 1, int64(n), int64(n) + 1, int64(n) + chunkSize} {
				got, err := readBody(r(data), size)
				if !bytes.Equal(got, want) || err != werr {
					t.Errorf("%d bytes %s, size %d: got %d bytes, %v; want %d bytes, %v", n, name, size, len(got), err, len(want), werr)
				}
			}
		}
	}
}

// A body read into pooled chunks is copied out: reading another body does
// not change it.
func TestReadBodyOwnsItsBytes(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 2*chunkSize+3)
	got, err := readBody(bytes.NewReader(a), -1)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := readBody(bytes.NewReader(bytes.Repeat([]byte("b"), 2*chunkSize+3)), -1); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, a) {
		t.Error("a body changed when another was read")
	}
}

// An announced length is not trusted with memory: a body that announces the
// page limit and is two bytes long does not allocate the limit.
func TestReadBodyDoesNotTrustALargeLength(t *testing.T) {
	const announced = 200 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readBody(bytes.NewReader([]byte("{}")), announced)
	runtime.ReadMemStats(&after)
	if err != nil || string(got) != "{}" {
		t.Fatalf("got %q, %v", got, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2*maxPresize {
		t.Errorf("reading 2 bytes announced as %d MiB allocated %d MiB", announced>>20, n>>20)
	}
}

// A body announced (truly) longer than maxPresize is read whole.
func TestReadBodyLongerThanPresize(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefg"), maxPresize/7+chunkSize)
	for _, size := range []int64{int64(len(data)), maxPresize, maxPresize + 1} {
		got, err := readBody(iotest.HalfReader(bytes.NewReader(data)), size)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: got %d bytes, %v; want %d", size, len(got), err, len(data))
		}
	}
}
