package fhir

import (
	"io"
	"sync"
)

// readBody reads r to its end, as io.ReadAll does (the bytes read before an
// error are returned with it), with less garbage: a page body is read once
// per page of every search, and io.ReadAll's growing buffers were about as
// much garbage again as the body itself.
//
// size is the length the response announced (Content-Length), or -1. The
// caller bounds it by the page size limit; it is a hint, not a promise: a
// body that turns out longer is read on, one that ends early ends early.
// Only up to maxPresize bytes are allocated on its word: a server that
// announces the page limit and sends a few bytes must not make every
// search hold a buffer of that limit.
func readBody(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return readChunks(r, nil)
	}
	// One byte more than announced: the read that reports the end of the
	// body then finds room and the buffer never grows. A longer body goes
	// on in chunks.
	buf := make([]byte, 0, min(size, maxPresize)+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			return readChunks(r, buf)
		}
	}
}

// maxPresize bounds the buffer a Content-Length makes readBody allocate
// before any byte arrived; a search page is a few hundred KB.
const maxPresize = 4 << 20

// chunkSize is the size of the pooled buffers a body of unknown length is
// read into before it is copied into one slice of its exact size.
const chunkSize = 64 << 10

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// readChunks reads r to its end after the bytes in head into pooled chunks,
// and returns head and them copied into one new slice.
func readChunks(r io.Reader, head []byte) ([]byte, error) {
	var (
		chunks []*[chunkSize]byte
		last   int // bytes in the last chunk
		err    error
	)
	defer func() {
		for _, c := range chunks {
			chunkPool.Put(c)
		}
	}()
	for err == nil {
		if len(chunks) == 0 || last == chunkSize {
			chunks = append(chunks, chunkPool.Get().(*[chunkSize]byte))
			last = 0
		}
		var n int
		n, err = r.Read(chunks[len(chunks)-1][last:])
		last += n
	}
	if err == io.EOF {
		err = nil
	}
	size := len(head) + (len(chunks)-1)*chunkSize + last
	out := make([]byte, 0, size)
	out = append(out, head...)
	for i, c := range chunks {
		if i == len(chunks)-1 {
			out = append(out, c[:last]...)
		} else {
			out = append(out, c[:]...)
		}
	}
	return out, err
}
